//! Platform mode's accounts, in process (`Ops` on a store, a fake platform for passwords):
//! made on first use and keyed by uid, an email change kept (and carried to the edges when
//! they see emails), a suspension taking the tokens off the documents and an enabling
//! bringing them back, an operator's disable outlasting the platform's "enabled", and a
//! platform account's password confirmed by the platform only (right, wrong, no answer).

mod support;

use std::cell::Cell;

use pat_admin::catalogue::Catalogue;
use pat_admin::error::Error;
use pat_admin::ops::{
    Actor, Confirmation, Description, NewToken, Ops, PlatformPasswords, Publishing, Scope,
};
use pat_admin::platform::UserInfo;
use pat_admin::store::{Open, Store, users};
use support::*;

fn info(uid: i64, email: &str, status: &str) -> UserInfo {
    UserInfo {
        uid,
        email: email.into(),
        status: status.into(),
    }
}

/// The platform's password check, played: `password` is right, anything else wrong; `down`
/// answers nothing. Counts the calls.
struct FakePlatform {
    password: &'static str,
    down: bool,
    calls: Cell<u32>,
}

impl PlatformPasswords for FakePlatform {
    fn check(&self, email: &str, password: &str) -> pat_admin::error::Result<bool> {
        self.calls.set(self.calls.get() + 1);
        assert_eq!(
            email, "alice@example.com",
            "checked with the account's email"
        );
        if self.down {
            return Err(
                pat_admin::platform::PlatformError("Signin (cannot connect)".into()).into(),
            );
        }
        Ok(password == self.password)
    }
}

fn open(admin: &Admin) -> Store {
    Store::open_as(admin.location(), Open::Existing).expect("store")
}

/// A token for `account` (its password already confirmed by `platform`).
fn token_for(store: &mut Store, account: &str, platform: &FakePlatform) -> i64 {
    let catalogue = Catalogue::builtin().expect("catalogue");
    let actor = Actor::api(account.into(), "192.0.2.1".into());
    let mut ops = Ops::new(store, catalogue).with_platform(Some(platform));
    let scope = Scope::set(catalogue, "ide-plugins").expect("scope");
    let new = NewToken::new(
        Description::parse("t").expect("description"),
        scope,
        ops.expiry_api(None).expect("expiry"),
    );
    ops.create(
        &actor,
        new,
        Confirmation::password(platform.password),
        Publishing::quiet(),
        |_| Ok(()),
    )
    .expect("generated")
    .outcome
    .token
    .id
}

fn suspended(admin: &Admin, id: i64) -> bool {
    admin
        .db()
        .query_row("SELECT suspended FROM tokens WHERE id = ?1", [id], |r| {
            r.get::<_, i64>(0)
        })
        .expect("token")
        == 1
}

#[test]
fn accounts_are_made_on_first_use_keyed_by_uid_and_follow_email_changes() {
    let admin = Admin::new();
    admin.init();
    let key = admin.key();
    let catalogue = Catalogue::builtin().expect("catalogue");
    let mut store = open(&admin);
    let first = Ops::new(&mut store, catalogue)
        .platform_account(
            "api 192.0.2.1",
            &info(7, "alice@example.com", "ENABLED"),
            Publishing::quiet(),
        )
        .expect("account")
        .outcome;
    assert!(first.changed);
    assert_eq!(first.account.name, "uid:7");
    assert_eq!(first.account.platform_uid, Some(7));
    assert_eq!(first.account.email.as_deref(), Some("alice@example.com"));
    assert_eq!(
        first.account.edge_identity(),
        "7",
        "edges see the uid by default"
    );
    assert!(first.account.password_hash.is_empty(), "no password here");
    let again = Ops::new(&mut store, catalogue)
        .platform_account(
            "api 192.0.2.1",
            &info(7, "alice@example.com", "ENABLED"),
            Publishing::quiet(),
        )
        .expect("account")
        .outcome;
    assert!(!again.changed, "nothing new");

    let platform = FakePlatform {
        password: "platform secret",
        down: false,
        calls: Cell::new(0),
    };
    let id = token_for(&mut store, "uid:7", &platform);
    let serial = admin.state_serial();
    // A new email: kept, the account and its tokens stay; edges see the uid: nothing signed.
    let done = Ops::new(&mut store, catalogue)
        .platform_account(
            "api 192.0.2.1",
            &info(7, "alice@new.example.com", "ENABLED"),
            Publishing::quiet(),
        )
        .expect("account");
    assert!(done.publish.is_none(), "nothing signed, nothing published");
    let moved = done.outcome;
    assert!(moved.changed);
    assert_eq!(moved.account.name, "uid:7");
    assert_eq!(
        moved.account.email.as_deref(),
        Some("alice@new.example.com")
    );
    assert_eq!(admin.state_serial(), serial);
    assert_eq!(admin.tokens("uid:7").len(), 1);
    // The operator can name it by its email.
    let found = users::find(store.conn(), "ALICE@new.example.com").expect("find");
    assert_eq!(found.map(|u| u.name).as_deref(), Some("uid:7"));
    // With edges seeing emails, an email change re-signs the account's tokens.
    Ops::new(&mut store, catalogue)
        .set_platform_identity(
            pat_admin::platform::Identity::Email,
            "platform-identity = email",
            Publishing::quiet(),
        )
        .expect("identity");
    assert_eq!(
        edge_user(&admin, &key, id).as_deref(),
        Some("alice@new.example.com"),
        "edges see the email now"
    );
    let back = Ops::new(&mut store, catalogue)
        .platform_account(
            "api 192.0.2.1",
            &info(7, "alice@example.com", "ENABLED"),
            Publishing::quiet(),
        )
        .expect("account");
    assert!(back.publish.is_some(), "a delta carries the new identity");
    assert_eq!(
        edge_user(&admin, &key, id).as_deref(),
        Some("alice@example.com")
    );
}

#[test]
fn a_suspension_takes_the_tokens_off_and_an_operators_disable_outlasts_the_platform() {
    let admin = Admin::new();
    admin.init();
    let key = admin.key();
    let catalogue = Catalogue::builtin().expect("catalogue");
    let mut store = open(&admin);
    Ops::new(&mut store, catalogue)
        .platform_account(
            "api 192.0.2.1",
            &info(7, "alice@example.com", "ENABLED"),
            Publishing::quiet(),
        )
        .expect("account");
    let platform = FakePlatform {
        password: "platform secret",
        down: false,
        calls: Cell::new(0),
    };
    let ids = [
        token_for(&mut store, "uid:7", &platform),
        token_for(&mut store, "uid:7", &platform),
    ];
    assert_eq!(admin.served(&key).token_count(), 2);
    // The platform says SUSPENDED: disabled, both tokens off in one document.
    let done = Ops::new(&mut store, catalogue)
        .platform_account(
            "api 192.0.2.1",
            &info(7, "alice@example.com", "SUSPENDED"),
            Publishing::quiet(),
        )
        .expect("account");
    assert!(done.publish.is_some(), "a document without them, published");
    let change = done.outcome;
    let disabled = change.account.disabled.clone().expect("disabled");
    assert_eq!(disabled.by, users::DisabledBy::Platform);
    assert!(disabled.reason.contains("SUSPENDED"), "{disabled:?}");
    assert!(ids.iter().all(|&id| suspended(&admin, id)));
    assert_eq!(
        admin.served(&key).token_count(),
        0,
        "no document holds them"
    );
    // No change while disabled: refused before the password is asked.
    let actor = Actor::api("uid:7".into(), "192.0.2.1".into());
    let refused = Ops::new(&mut store, catalogue)
        .with_platform(Some(&platform))
        .confirm(&actor, "platform secret", |_, _| {});
    assert!(
        matches!(refused, Err(Error::AccountDisabled { .. })),
        "{refused:?}"
    );
    // ENABLED again: back.
    let change = Ops::new(&mut store, catalogue)
        .platform_account(
            "api 192.0.2.1",
            &info(7, "alice@example.com", "ENABLED"),
            Publishing::quiet(),
        )
        .expect("account")
        .outcome;
    assert!(change.account.disabled.is_none());
    assert_eq!(admin.served(&key).token_count(), 2);
    // An operator's disable: the platform's ENABLED does not undo it.
    Ops::new(&mut store, catalogue)
        .switch_account(
            "operator",
            "alice@example.com",
            Some(users::Disabled {
                at: 1,
                by: users::DisabledBy::Operator,
                reason: "unpaid".into(),
            }),
            Publishing::quiet(),
        )
        .expect("disabled");
    let change = Ops::new(&mut store, catalogue)
        .platform_account(
            "api 192.0.2.1",
            &info(7, "alice@example.com", "ENABLED"),
            Publishing::quiet(),
        )
        .expect("account")
        .outcome;
    assert_eq!(
        change.account.disabled.map(|d| d.by),
        Some(users::DisabledBy::Operator)
    );
    assert_eq!(admin.served(&key).token_count(), 0);
    let actions: Vec<String> = admin
        .audit()
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "user.disable").count(),
        2,
        "{actions:?}"
    );
    assert_eq!(actions.iter().filter(|a| *a == "user.enable").count(), 1);
}

#[test]
fn a_platform_accounts_password_is_the_platforms_to_check() {
    let admin = Admin::new();
    admin.init();
    let catalogue = Catalogue::builtin().expect("catalogue");
    let mut store = open(&admin);
    Ops::new(&mut store, catalogue)
        .platform_account(
            "api 192.0.2.1",
            &info(7, "alice@example.com", "ENABLED"),
            Publishing::quiet(),
        )
        .expect("account");
    let actor = Actor::api("uid:7".into(), "192.0.2.1".into());
    let platform = FakePlatform {
        password: "platform secret",
        down: false,
        calls: Cell::new(0),
    };
    // Without a platform: refused, nothing counted.
    let none = Ops::new(&mut store, catalogue).confirm(&actor, "platform secret", |_, _| {});
    assert!(
        matches!(&none, Err(Error::Refused(m)) if m.contains("platform-url")),
        "{none:?}"
    );
    // Right and wrong.
    Ops::new(&mut store, catalogue)
        .with_platform(Some(&platform))
        .confirm(&actor, "platform secret", |_, _| {})
        .expect("right");
    let wrong = Ops::new(&mut store, catalogue)
        .with_platform(Some(&platform))
        .confirm(&actor, "guess", |_, _| {});
    assert!(matches!(wrong, Err(Error::WrongPassword(_))), "{wrong:?}");
    assert_eq!(platform.calls.get(), 2);
    let failed = |admin: &Admin| {
        users::get(open(admin).conn(), "uid:7")
            .expect("read")
            .expect("account")
            .failed_attempts
    };
    assert_eq!(failed(&admin), 1, "counted");
    // The platform not answering: an error, nothing counted, no back-off added.
    let down = FakePlatform {
        password: "platform secret",
        down: true,
        calls: Cell::new(0),
    };
    let error = Ops::new(&mut store, catalogue)
        .with_platform(Some(&down))
        .confirm(&actor, "platform secret", |_, _| {});
    assert!(matches!(&error, Err(Error::Platform(_))), "{error:?}");
    assert_eq!(failed(&admin), 1, "not counted");
    // A local password never confirms a platform account (it has none here).
    assert!(!pat_admin::password::verify("", ""));
}

/// The account an edge fed from the stored documents forwards for token `id`.
fn edge_user(admin: &Admin, key: &str, id: i64) -> Option<String> {
    let hash: [u8; 32] = admin.stored_hash(id).try_into().expect("a hash");
    admin
        .served(key)
        .find(&pat_core::token::TokenHash(hash))
        .map(|t| t.user().to_string())
}
