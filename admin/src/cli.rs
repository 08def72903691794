//! The command line (clap). Names and flags are a contract: scripts depend on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Personal access tokens for the platform API, enforced by the pat-edge Envoy filter:
/// accounts, password-confirmed token changes, the API method catalogue, signing keys, and
/// publishing signed snapshots to the edges.
#[derive(Debug, Parser)]
#[command(
    name = "pat-admin",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 success, 1 failure (store, files, network setup), 2 invalid input, \
3 wrong password, 4 not found, 5 refused by a rule (limit, duplicate, lifetime, no signing key), \
6 an edge did not accept or could not be reached (a change was saved and signed), \
7 a change was saved but not signed (no signing key; nothing was pushed), \
8 list --expiring-within or --unused-for found tokens, \
9 too many attempts (another password check for the account is under way; retry in the seconds said).\n\
Colour only on a terminal (NO_COLOR turns it off)."
)]
pub struct Opts {
    /// The store: a directory (SQLite; default: the user's data directory, e.g.
    /// ~/.local/share/pat-admin) or a PostgreSQL database (postgres://user@host/db; its signing
    /// keys are sealed with PAT_ADMIN_KEY_SECRET). Also PAT_STORE.
    #[arg(long, global = true, env = "PAT_ADMIN_STORE", value_name = "DIR|URL")]
    pub store: Option<String>,

    /// Machine-readable JSON on stdout (errors as JSON on stderr).
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accounts: add, change a password, list.
    #[command(subcommand)]
    User(UserCommand),
    /// Create a token; its value is shown exactly once.
    Generate(GenerateArgs),
    /// Tokens: one account's, or every account's; --expiring-within and --unused-for for cron
    /// and monitoring.
    List(ListArgs),
    /// One token in detail, with every method of its scope.
    Show(TokenRef),
    /// Change a token's description, expiry, scope, allowed client networks, environments or
    /// rate limit (its value stays the same).
    Edit(EditArgs),
    /// Give a token a new value, keeping every other parameter; the old value stops working,
    /// at once or (--grace) at the end of a grace window.
    Regenerate(RegenerateArgs),
    /// Create a new token with the parameters of an existing one.
    Copy(CopyArgs),
    /// Remove tokens; an edge refuses them as soon as it has the new snapshot (pushed at once,
    /// or fetched from `pat-admin serve`).
    Remove(RemoveArgs),
    /// Which token a leaked value is: reads values on stdin (one per line), prints id, owner,
    /// status and description. Nothing is stored or changed.
    Lookup(LookupArgs),
    /// Remove the tokens whose values are read on stdin (a secret scanner's hit) and publish:
    /// the operator's emergency action, no account password, audited with --reason.
    RevokeLeaked(RevokeLeakedArgs),
    /// The API method catalogue, with an API docs link per method.
    Methods(MethodsArgs),
    /// Ed25519 keys that sign snapshots.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The edges (Envoy control listeners) snapshots are published to.
    #[command(subcommand)]
    Edge(EdgeCommand),
    /// Sign a snapshot of the active tokens (unless the latest one is still current) and push it
    /// to every edge.
    Publish(PublishArgs),
    /// Ask edges which snapshot they hold.
    Status(StatusArgs),
    /// Serve signed snapshots to edges that (re)start or lag (full snapshots and catch-ups),
    /// take their usage reports, re-sign before expiry and compact long chains of deltas.
    Serve(ServeArgs),
    /// The audit log: who changed what, when.
    Audit(AuditArgs),
    /// Store settings: token limit per account, maximum token lifetime, snapshot lifetime,
    /// longest grace window.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The store itself: copy it into another, empty store (SQLite into PostgreSQL when one
    /// host is no longer enough).
    #[command(subcommand)]
    Store(StoreCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (pat-admin.1 and one per command) into a directory.
    Man(ManArgs),
}

/// Timeouts of pushes to edges.
#[derive(Debug, Clone, Default, Args)]
pub struct PushOpts {
    /// Seconds one push attempt to an edge may take [default: 10, or PAT_ADMIN_PUSH_TIMEOUT,
    /// or `config set push-timeout`].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Seconds the whole push may take, retries included [default: 30, or
    /// PAT_ADMIN_PUSH_DEADLINE, or `config set push-deadline`].
    #[arg(long, value_name = "SECS")]
    pub deadline: Option<f64>,
}

/// Password confirmation and publishing, shared by every change.
#[derive(Debug, Clone, Args)]
pub struct Confirm {
    /// Read the account password from the first line of standard input instead of prompting
    /// (for `user passwd`: the current password, then the new one on the second line).
    #[arg(long)]
    pub password_stdin: bool,
    /// Do not push the change to the configured edges (push later with `pat-admin publish`).
    /// The change is signed and stored all the same: `pat-admin serve` hands it to edges.
    #[arg(long)]
    pub no_publish: bool,
    /// Push timeouts.
    #[command(flatten)]
    pub push: PushOpts,
}

/// Account commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (asks for its password).
    Add {
        /// Account name: letters, digits and . _ @ + -
        user: String,
        /// Password confirmation and publishing.
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Change an account's password (asks for the current one first).
    Passwd {
        /// Account name.
        user: String,
        /// Password confirmation and publishing.
        #[command(flatten)]
        confirm: Confirm,
    },
    /// List accounts with their token counts (platform accounts with their uid and email),
    /// and whether each is disabled.
    List,
    /// Disable an account: every token of it leaves the edges at once, in one signed document
    /// (the tokens stay in the store); it may not sign in or change tokens until it is
    /// enabled. No password: the operator's action, audited. Name the account as `list`
    /// shows it (`alice`, `uid:7`) or by a platform account's email. A platform runs this
    /// when it suspends an account.
    Disable {
        /// The account.
        user: String,
        /// Why (kept in the audit log and shown by `user list`).
        #[arg(long, default_value = "disabled by the operator")]
        reason: String,
        /// Do not push to the configured edges (`pat-admin serve` still hands it out).
        #[arg(long)]
        no_publish: bool,
        /// Push timeouts.
        #[command(flatten)]
        push: PushOpts,
    },
    /// Enable a disabled account: its tokens (those not expired) are back on the edges in one
    /// signed document.
    Enable {
        /// The account.
        user: String,
        /// Do not push to the configured edges (`pat-admin serve` still hands it out).
        #[arg(long)]
        no_publish: bool,
        /// Push timeouts.
        #[command(flatten)]
        push: PushOpts,
    },
}

/// A token's scope: a predefined set or a list of methods.
#[derive(Debug, Clone, Args)]
#[group(multiple = false)]
pub struct Scope {
    /// A predefined set: ide-plugins, marketplace or maven-plugin.
    #[arg(long, value_name = "SET", value_parser = SetName)]
    pub api: Option<String>,
    /// API methods, e.g. environment.Control.StopEnv (repeat the flag, or separate with commas).
    #[arg(long = "method", value_name = "NAME", value_delimiter = ',')]
    pub methods: Vec<String>,
}

impl Scope {
    /// True when neither a set nor methods were given.
    pub fn is_empty(&self) -> bool {
        self.api.is_none() && self.methods.is_empty()
    }
}

/// `generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The account the token acts for.
    #[arg(long)]
    pub user: String,
    /// What the token is for.
    #[arg(long)]
    pub description: String,
    /// Last day the token is valid (through the end of that day, UTC).
    #[arg(long, value_name = "DD-MM-YYYY")]
    pub expires_at: Option<String>,
    /// The scope.
    #[command(flatten)]
    pub scope: Scope,
    /// Only accept the token from clients in this network: an IPv4 or IPv6 CIDR such as
    /// 203.0.113.0/24 or 2001:db8::/32, or one address (repeat the flag, or separate with
    /// commas; at most 32). Without it: any address.
    #[arg(long = "allow-ip", value_name = "CIDR", value_delimiter = ',')]
    pub allow_ip: Vec<String>,
    /// Only let the token act on this environment (its name, e.g. my-app; repeat the flag,
    /// or separate with commas; at most 32): it may then call only the methods that act on
    /// one environment named by `envName`. Without it: any environment.
    #[arg(long = "env", value_name = "NAME", value_delimiter = ',')]
    pub env: Vec<String>,
    /// At most this many requests per second or minute on each edge, e.g. 10/s or 600/min.
    /// Without it: the default-rate-limit setting's, if any.
    #[arg(long, value_name = "N/s|N/min")]
    pub rate_limit: Option<String>,
    /// Write the token to this new file (mode 0600) instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Password confirmation and publishing.
    #[command(flatten)]
    pub confirm: Confirm,
}

/// A change of a token's environments and rate limit (`edit`, `copy`).
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Only let the token act on these environments (replacing the list; repeat the flag,
    /// or separate with commas; at most 32).
    #[arg(
        long = "env",
        value_name = "NAME",
        value_delimiter = ',',
        conflicts_with = "any_env"
    )]
    pub env: Vec<String>,
    /// Let the token act on any environment again (drop its environment list).
    #[arg(long)]
    pub any_env: bool,
    /// At most this many requests per second or minute on each edge, e.g. 10/s or 600/min.
    #[arg(long, value_name = "N/s|N/min", conflicts_with = "no_rate_limit")]
    pub rate_limit: Option<String>,
    /// Drop the token's own rate limit (the default-rate-limit setting's applies, if any).
    #[arg(long)]
    pub no_rate_limit: bool,
}

/// An account's token.
#[derive(Debug, Args)]
pub struct TokenRef {
    /// The account.
    #[arg(long)]
    pub user: String,
    /// The token id (see `list`).
    pub id: i64,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this account's tokens (default: every account's).
    #[arg(long)]
    pub user: Option<String>,
    /// Only active tokens that expire within this duration (e.g. 14d, 36h); exits 8 when
    /// there are any, 0 when there are none.
    #[arg(long, value_name = "DURATION")]
    pub expiring_within: Option<String>,
    /// Only active tokens no edge has reported a use of for this long (e.g. 90d; a token
    /// never used counts from its creation); exits 8 when there are any, 0 when there are
    /// none.
    #[arg(long, value_name = "DURATION")]
    pub unused_for: Option<String>,
}

/// `lookup`.
#[derive(Debug, Args)]
pub struct LookupArgs {}

/// `revoke-leaked`.
#[derive(Debug, Args)]
pub struct RevokeLeakedArgs {
    /// Why (kept in the audit log), e.g. "found in a public repository by the secret scanner".
    #[arg(long)]
    pub reason: String,
    /// Do not push to the configured edges (`pat-admin serve` still hands the removal out).
    #[arg(long)]
    pub no_publish: bool,
    /// Push timeouts.
    #[command(flatten)]
    pub push: PushOpts,
}

/// `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory to write the pages into (created if needed), e.g.
    /// /usr/local/share/man/man1.
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dir: PathBuf,
}

/// `edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// The token.
    #[command(flatten)]
    pub token: TokenRef,
    /// New description.
    #[arg(long)]
    pub description: Option<String>,
    /// New last valid day.
    #[arg(long, value_name = "DD-MM-YYYY", conflicts_with = "no_expiry")]
    pub expires_at: Option<String>,
    /// Remove the expiry (refused when a maximum lifetime is configured).
    #[arg(long)]
    pub no_expiry: bool,
    /// The scope.
    #[command(flatten)]
    pub scope: Scope,
    /// Replace the allowed client networks with these (IPv4 or IPv6 CIDRs; repeat the flag,
    /// or separate with commas; at most 32).
    #[arg(
        long = "allow-ip",
        value_name = "CIDR",
        value_delimiter = ',',
        conflicts_with = "no_ip_limit"
    )]
    pub allow_ip: Vec<String>,
    /// Accept the token from any address again (drop its allowed networks).
    #[arg(long)]
    pub no_ip_limit: bool,
    /// Environments and rate limit.
    #[command(flatten)]
    pub limits: Limits,
    /// Password confirmation and publishing.
    #[command(flatten)]
    pub confirm: Confirm,
}

/// `regenerate`.
#[derive(Debug, Args)]
pub struct RegenerateArgs {
    /// The token.
    #[command(flatten)]
    pub token: TokenRef,
    /// A new last valid day (needed when the token has expired).
    #[arg(long, value_name = "DD-MM-YYYY")]
    pub expires_at: Option<String>,
    /// Keep the old value working this long (e.g. 30m, 1h, 7d; at most `config set
    /// max-grace`, default 7d), so clients can switch over; it stops at the token's expiry
    /// if that is sooner, and at once when the token is removed or regenerated again.
    /// Without it: the old value stops working at once.
    #[arg(long, value_name = "DURATION")]
    pub grace: Option<String>,
    /// Write the new token to this new file (mode 0600) instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Password confirmation and publishing.
    #[command(flatten)]
    pub confirm: Confirm,
}

/// `copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The token.
    #[command(flatten)]
    pub token: TokenRef,
    /// Description of the copy (default: the original's).
    #[arg(long)]
    pub description: Option<String>,
    /// Last valid day of the copy (default: the original's; needed when it has expired).
    #[arg(long, value_name = "DD-MM-YYYY")]
    pub expires_at: Option<String>,
    /// Environments and rate limit of the copy (default: the original's).
    #[command(flatten)]
    pub limits: Limits,
    /// Write the new token to this new file (mode 0600) instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Password confirmation and publishing.
    #[command(flatten)]
    pub confirm: Confirm,
}

/// `remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The account.
    #[arg(long)]
    pub user: String,
    /// Token ids.
    #[arg(required = true, num_args = 1..)]
    pub ids: Vec<i64>,
    /// Password confirmation and publishing.
    #[command(flatten)]
    pub confirm: Confirm,
}

/// `methods`.
#[derive(Debug, Args)]
pub struct MethodsArgs {
    /// Only methods whose name contains this text (any case).
    #[arg(long)]
    pub search: Option<String>,
    /// Only the methods of a predefined set.
    #[arg(long, value_name = "SET", value_parser = SetName)]
    pub api: Option<String>,
    /// Only the methods a token may call (needs --user and the token id).
    #[arg(long, requires_all = ["user", "id"])]
    pub only_checked: bool,
    /// The account of the token (with --only-checked).
    #[arg(long, requires = "only_checked")]
    pub user: Option<String>,
    /// The token id (with --only-checked).
    #[arg(requires = "only_checked")]
    pub id: Option<i64>,
}

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a signing key and make it the active one (or, with --inactive, stage it for
    /// rotation); prints the public key the edges must trust.
    Generate {
        /// Keep the current key active: add the new public key to the edges first, then
        /// `key activate ID`.
        #[arg(long)]
        inactive: bool,
    },
    /// List signing keys.
    List,
    /// Make an existing key the one that signs new snapshots (key rotation).
    Activate {
        /// Key id (see `key list`).
        id: String,
    },
}

/// Edge commands.
#[derive(Debug, Subcommand)]
pub enum EdgeCommand {
    /// The edges' own keys, which sign their usage reports ("last used").
    #[command(subcommand)]
    Key(EdgeKeyCommand),
    /// Add an edge: the base URL of its control listener, e.g. http://127.0.0.1:10001.
    Add {
        /// The URL.
        url: String,
    },
    /// Remove an edge.
    Remove {
        /// The URL.
        url: String,
    },
    /// List the configured edges.
    List,
}

/// Edge key commands.
#[derive(Debug, Subcommand)]
pub enum EdgeKeyCommand {
    /// Create an edge's key: its secret goes to a new file (mode 0600, never overwritten,
    /// never printed) for the edge's PAT_EDGE_KEY, its public key is registered here, and
    /// `serve` takes the usage reports it signs.
    Generate {
        /// The edge's name (letters, digits and . _ - ; unique, any case).
        #[arg(long)]
        name: String,
        /// The new file to write the secret key to.
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
    },
    /// List the registered edge keys.
    List,
    /// Remove an edge key: reports signed with it are refused from then on.
    Remove {
        /// Key id (see `edge key list`).
        id: String,
    },
}

/// `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Push to these edges instead of the configured ones (repeatable).
    #[arg(long = "edge", value_name = "URL")]
    pub edges: Vec<String>,
    /// Push the latest stored snapshot again, never building a new one (an edge restarted).
    #[arg(long)]
    pub resend: bool,
    /// Push timeouts.
    #[command(flatten)]
    pub push: PushOpts,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The edges to ask (repeatable; default: the configured ones).
    #[arg(long = "edge", value_name = "URL")]
    pub edges: Vec<String>,
    /// Seconds to wait for each edge [default: 10, or PAT_ADMIN_PUSH_TIMEOUT].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the snapshot origin: HOST:PORT, e.g. 127.0.0.1:10002 or localhost:10002.
    #[arg(long, value_name = "HOST:PORT", required_unless_present = "api_listen")]
    pub listen: Option<String>,
    /// Address of the platform's token API (users.Authentication: Signin, CreateToken, …),
    /// e.g. 127.0.0.1:10003; Envoy routes /1.0/users/authentication/rest/ here.
    #[arg(long, value_name = "HOST:PORT")]
    pub api_listen: Option<String>,
    /// A request header carrying the client's address, set by Envoy (envoy.yaml sets
    /// x-pat-client-address); trusted for sign-in back-off and the audit log, so only use it
    /// when nothing but Envoy can reach the API address. Without it: the peer address.
    #[arg(long, value_name = "HEADER", requires = "api_listen")]
    pub client_address_header: Option<String>,
    /// Platform mode: the platform API's base URL (http://HOST:PORT; e.g. the Envoy in front
    /// of it on loopback). The token methods then take the platform's login sessions and the
    /// platform checks passwords; Signin and Signout stay the platform's. Also `config set
    /// platform-url URL` (this flag wins); without either, standalone mode.
    #[arg(long, value_name = "URL", requires = "api_listen")]
    pub platform_url: Option<String>,
    /// Serve the filter's module on the origin (repeat for older versions an edge may still
    /// pin): the first at /module/plugin.wasm (its SHA-256 at /module/plugin.wasm.sha256),
    /// each at /module/sha256/<hex>/plugin.wasm, for Envoy's vm_config.code.remote.
    #[arg(long, value_name = "PATH", requires = "listen")]
    pub module: Vec<std::path::PathBuf>,
    /// How often to look at the latest document, re-signing it a quarter into its lifetime
    /// (or when changes were committed without one, or another key is active) and compacting
    /// a long chain of deltas: a duration, e.g. 2s, 30s or 1m (at least 1s) [default: 2s].
    #[arg(long, value_name = "DURATION")]
    pub check_every: Option<String>,
}

/// `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this account's entries.
    #[arg(long)]
    pub user: Option<String>,
    /// How many entries, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

/// The store itself.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy every account, token, key, edge, setting, audit entry and the whole snapshot
    /// chain of the store (--store) into an empty store: a PostgreSQL database
    /// (postgres://user@host/db; keys sealed with PAT_ADMIN_KEY_SECRET) or a directory.
    /// Refuses a target that holds anything; the source is not changed.
    Copy {
        /// The target store: postgres://... or a directory.
        #[arg(long, value_name = "URL|DIR")]
        to: String,
    },
}

/// Settings.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show the settings.
    Show,
    /// Change a setting: its name and value (`none` returns the ones that have a default
    /// to it). Each setting's values and default are listed under its name below
    /// (`pat-admin config set --help`).
    Set {
        /// The setting.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(crate::settings::possible_values()))]
        key: String,
        /// Its value.
        value: String,
    },
}

/// `--api SET`: any text (a set's id or display name, checked against the catalogue later,
/// with "did you mean"), completed by shells with the set ids instead of file names.
#[derive(Debug, Clone, Copy)]
pub struct SetName;

impl clap::builder::TypedValueParser for SetName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        let sets = crate::catalogue::Catalogue::builtin().ok()?.sets();
        Some(Box::new(
            sets.iter()
                .map(|s| clap::builder::PossibleValue::new(s.id.as_str())),
        ))
    }
}
