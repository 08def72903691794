//! The Access Tokens page (`/tokens/`) in a real browser: headless Chromium through
//! chromedriver, on the real stack (Envoy with the filter, the platform stand-in,
//! `pat-admin serve --api-listen`). One test per step of the dashboard flow, the flow end to
//! end, a wrong password, an XSS description, the keyboard, a phone screen, errors and
//! progress, and the page's headers. Every test saves screenshots in
//! `target/browser-screenshots/<test>/` (and `failure.png`/`failure.txt` when it fails).

mod browser;

use std::time::Duration;

use browser::{Browser, Screen};
use fantoccini::key::Key;
use pat_e2e::{Answer, Client, PASSWORD, PLATFORM_PASSWORD, Stack, unix_now, within};
use serde_json::{Value, json};

const STOPENV: &str = "/1.0/environment/control/rest/stopenv";
const DELETEENV: &str = "/1.0/environment/control/rest/deleteenv";

fn start(name: &str, screen: Screen) -> (Stack, Browser) {
    let stack = Stack::start();
    let browser = Browser::start(name, screen);
    (stack, browser)
}

/// alice's login and password, and the account the store names her by: pat-admin's own
/// account, or in platform mode the platform's (which the stand-in plays).
fn alice(stack: &Stack) -> (&'static str, &'static str, &'static str) {
    if stack.is_platform_mode() {
        ("alice@example.com", PLATFORM_PASSWORD, "uid:1001")
    } else {
        ("alice", PASSWORD, "alice")
    }
}

/// A login session through Envoy's Signin route (pat-admin's, or in platform mode the
/// platform's), for checks from outside the page.
fn api_session(stack: &Stack) -> String {
    let (login, password, _) = alice(stack);
    let answer = Client::new().post(
        &stack.api_url("Signin", ""),
        "application/x-www-form-urlencoded",
        format!(
            "login={}&password={}",
            login.replace('@', "%40"),
            password.replace(' ', "+")
        )
        .into_bytes(),
    );
    assert_eq!(answer.json["result"], 0, "{answer:?}");
    answer.json["session"]
        .as_str()
        .expect("session")
        .to_string()
}

/// alice's tokens as the API lists them, in id order.
fn api_tokens(stack: &Stack) -> Vec<Value> {
    let session = api_session(stack);
    let answer = Client::new().get(
        &stack.api_url("GetTokens", &format!("session={session}")),
        &[],
    );
    assert_eq!(answer.json["result"], 0, "{answer:?}");
    let mut list = answer.json["apiTokens"].as_array().cloned().expect("list");
    list.sort_by_key(|t| t["id"].as_i64());
    list
}

fn ids(tokens: &[Value]) -> Vec<i64> {
    tokens.iter().filter_map(|t| t["id"].as_i64()).collect()
}

fn methods(token: &Value) -> Vec<String> {
    let mut m: Vec<String> = token["apiListItems"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["method"].as_str().expect("method").to_string())
        .collect();
    m.sort();
    m
}

/// A platform call through Envoy with `token` as the session.
fn platform(stack: &Stack, path: &str, token: &str) -> Answer {
    Client::new().get(
        &stack.url(&format!("{path}?envName=e2e&session={token}")),
        &[],
    )
}

/// Waits until `token` gets `code` (0: allowed by the stand-in) on `path`, on every worker.
fn eventually(stack: &Stack, path: &str, token: &str, code: i64) {
    let ok = |a: &Answer| {
        if code == 0 {
            a.is_ok()
        } else {
            a.denied_with(code)
        }
    };
    within(Duration::from_secs(15), || {
        ok(&platform(stack, path, token))
    })
    .unwrap_or_else(|| panic!("{path} with the token never answered {code}"));
    for _ in 0..6 {
        let answer = platform(stack, path, token);
        assert!(ok(&answer), "{path}: {answer:?}");
    }
}

fn generate_cli(stack: &Stack, description: &str, scope: &[&str]) -> (i64, String) {
    let mut args = vec![
        "--json",
        "generate",
        "--user",
        "alice",
        "--description",
        description,
        "--password-stdin",
    ];
    args.extend_from_slice(scope);
    let reply = stack.admin_ok(&args, &format!("{PASSWORD}\n"));
    (
        reply["id"].as_i64().expect("id"),
        reply["token"].as_str().expect("token").to_string(),
    )
}

fn next_year() -> i32 {
    // Good enough for a date a year or so ahead.
    1970 + i32::try_from(unix_now() / 31_556_952).expect("year") + 1
}

/// Opens the form with `tool` (Generate, Edit, Copy) and waits for it.
fn open_form(b: &Browser, tool: &str) {
    b.click_button(tool);
    b.wait_dialog("form-dialog", true);
    b.field("Description");
}

/// Chooses Custom and checks `method`, found by typing `search` into Search.
fn check_method(b: &Browser, search: &str, method: &str) {
    if !b.field("Custom").is_selected_now(b) {
        b.click(&b.field("Custom"));
    }
    b.fill("Search", search);
    let boxed = b.field(method);
    if !boxed.is_selected_now(b) {
        b.click(&boxed);
    }
}

/// A small extension: an element's checkedness now.
trait Checked {
    fn is_selected_now(&self, b: &Browser) -> bool;
}

impl Checked for fantoccini::elements::Element {
    fn is_selected_now(&self, b: &Browser) -> bool {
        b.js("return arguments[0].checked === true;", vec![json!(self)]) == json!(true)
    }
}

/// The methods the Custom checklist shows now.
fn shown_methods(b: &Browser) -> Vec<String> {
    b.js(
        "return [...document.querySelectorAll('#f-methods li')].filter((li) => !li.hidden)
            .map((li) => li.querySelector('label').textContent);",
        vec![],
    )
    .as_array()
    .expect("list")
    .iter()
    .map(|v| v.as_str().expect("text").to_string())
    .collect()
}

/// Closes the Token dialog with Close and checks the value is gone from the page.
fn close_value(b: &Browser, value: &str) {
    b.click_button("Close");
    b.wait_dialog("value-dialog", false);
    assert_no_value_in_page(b, value);
}

fn assert_no_value_in_page(b: &Browser, value: &str) {
    // Escape closes the dialog; its `close` event (which forgets) follows in the next task.
    let find = || {
        b.js(
        "const v = arguments[0];
         const where = [];
         for (const i of document.querySelectorAll('input')) if (i.value.includes(v)) where.push('input #' + i.id);
         if (document.documentElement.outerHTML.includes(v)) where.push('the HTML');
         if (location.href.includes(v)) where.push('the URL');
         if (localStorage.length || sessionStorage.length) where.push('storage');
         if (document.cookie !== '') where.push('a cookie');
         return where;",
        vec![json!(value)],
    )
    };
    let _ = within(Duration::from_secs(2), || find() == json!([]));
    assert_eq!(find(), json!([]), "the value is forgotten, nothing stored");
}

#[test]
fn step1_sign_in_with_login_and_password_and_sign_out() {
    let (stack, b) = start("step1_sign_in", Screen::Desktop);
    b.check(|b| {
        // On Envoy's public listener.
        b.goto(&stack.url("/tokens/"));
        b.field("Login");
        b.field("Password");
        b.button("Sign in");
        b.shot("sign-in");
        b.fill("Login", "alice");
        b.fill("Password", "not the password");
        b.click_button("Sign in");
        b.wait_text("signin-error", "wrong login or password");
        assert_eq!(b.text_of("tokens-view"), "", "no list before signing in");
        b.shot("wrong-password");
        b.fill("Password", PASSWORD);
        b.click_button("Sign in");
        assert_eq!(b.wait_text("whoami", "Signed in as"), "Signed in as alice");
        b.button("Sign out");
        // The session is nowhere but in the script's memory.
        assert_eq!(b.url(), stack.url("/tokens/"));
        assert_eq!(
            b.js(
                "return [document.cookie, localStorage.length, sessionStorage.length];",
                vec![]
            ),
            json!(["", 0, 0])
        );
        b.shot("signed-in");
        b.click_button("Sign out");
        b.field("Login");
        assert_eq!(b.text_of("whoami"), "");
        assert!(b.text_of("tokens-view").is_empty(), "the list is gone");
        b.shot("signed-out");
        // Signout ended the session in the store: none is left.
        let left: i64 = stack
            .db()
            .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
            .expect("sessions");
        assert_eq!(left, 0, "Sign out ended the session");
        let audit = stack.admin_ok(&["--json", "audit", "--user", "alice", "--limit", "10"], "");
        let actions: Vec<&str> = audit
            .as_array()
            .expect("audit")
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert!(actions.contains(&"session.signout"), "{actions:?}");
        assert!(actions.contains(&"session.signin"), "{actions:?}");
        assert!(actions.contains(&"auth.failed"), "{actions:?}");

        // The same page straight on the API listener (relative API addresses).
        b.sign_in(
            &format!("http://127.0.0.1:{}", stack.ports.api),
            "alice",
            PASSWORD,
        );
        assert_eq!(b.wait_text("whoami", "Signed in"), "Signed in as alice");
        b.shot("signed-in-on-the-api-listener");
    });
}

trait Displayed {
    fn is_displayed_now(&self, b: &Browser) -> bool;
}

impl Displayed for fantoccini::elements::Element {
    fn is_displayed_now(&self, b: &Browser) -> bool {
        b.js("return arguments[0].checkVisibility();", vec![json!(self)]) == json!(true)
    }
}

/// Platform mode: the page signs in with the platform's own Signin (Envoy routes it to the
/// platform) and signs out there; pat-admin keeps no session.
#[test]
fn step1_in_platform_mode_the_page_signs_in_with_the_platform() {
    let stack = Stack::start_platform();
    let b = Browser::start("step1_sign_in_platform", Screen::Desktop);
    b.check(|b| {
        b.goto(&stack.url("/tokens/"));
        b.fill("Login", "alice@example.com");
        b.fill("Password", "not the password");
        b.click_button("Sign in");
        // The platform's own answer, shown as the page shows any.
        b.wait_text("signin-error", "wrong login or password");
        assert_eq!(stack.standin("/_standin/calls")["Signin"], 1, "asked the platform");
        b.fill("Password", PLATFORM_PASSWORD);
        b.click_button("Sign in");
        assert_eq!(
            b.wait_text("whoami", "Signed in as"),
            "Signed in as alice@example.com"
        );
        b.button("Generate");
        b.wait_until("the list loaded", || {
            b.js(
                "return document.querySelector('#tool-refresh').getAttribute('aria-busy') === null;",
                vec![],
            ) == json!(true)
        });
        assert_eq!(b.text_of("banner-text"), "", "the token API took the platform's session");
        b.shot("signed-in");
        b.click_button("Sign out");
        b.field("Login");
        assert_eq!(stack.standin("/_standin/calls")["Signout"], 1, "signed out there");
        // pat-admin kept no session of its own, and knows the account by its uid now.
        let sessions: i64 = stack
            .db()
            .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
            .expect("sessions");
        assert_eq!(sessions, 0);
        let users = stack.admin_ok(&["--json", "user", "list"], "");
        assert_eq!(users[0]["name"], "uid:1001", "{users}");
        assert_eq!(users[0]["email"], "alice@example.com", "{users}");
    });
}

#[test]
fn step2_the_list_the_tools_and_selection_with_shift_and_ctrl() {
    let (stack, b) = start("step2_list", Screen::Desktop);
    let year = next_year();
    let expires = format!("31-12-{year}");
    let (t1, _) = generate_cli(
        &stack,
        "CI deploys",
        &["--api", "ide-plugins", "--expires-at", &expires],
    );
    let (t2, _) = generate_cli(
        &stack,
        "stop/start",
        &[
            "--method",
            "environment.Control.StopEnv",
            "--method",
            "environment.Control.StartEnv",
        ],
    );
    let (t3, _) = generate_cli(&stack, "old one", &["--api", "marketplace"]);
    let past = unix_now() - 3600;
    stack
        .db()
        .execute(
            &format!("UPDATE tokens SET expires_at = {past} WHERE id = {t3}"),
            [],
        )
        .expect("expire");
    b.check(|b| {
        assert_eq!(
            b.js("return [innerWidth, innerHeight];", vec![]),
            json!([1280, 800]),
            "a 1280×800 viewport"
        );
        b.sign_in(&stack.public_base(), "alice", PASSWORD);
        b.wait_rows(&[t1, t2, t3]);
        let rows = b.rows();
        assert_eq!(
            rows[0]["cells"],
            json!([t1.to_string(), "CI deploys", "IDE Plugins", "any", expires, "never", "active", "any", "none"])
        );
        assert_eq!(
            rows[1]["cells"],
            json!([t2.to_string(), "stop/start", "Custom, 2 methods", "any", "never", "never", "active", "any", "none"])
        );
        assert_eq!(rows[2]["cells"][2], "Marketplace");
        assert_eq!(rows[2]["cells"][6], "expired");
        // The column headers and exactly these tools.
        assert_eq!(
            b.js("return [...document.querySelectorAll('#token-table th')].map((th) => th.textContent);", vec![]),
            json!(["ID", "Description", "API", "Allowed IPs", "Expires", "Last used", "Status", "Environments", "Rate limit"])
        );
        assert_eq!(
            b.js("return [...document.querySelector('[role=toolbar]').querySelectorAll('button')].map((x) => x.textContent);", vec![]),
            json!(["Generate", "Edit", "Copy", "Remove", "Refresh"])
        );
        let enabled = |text: &str| {
            b.js(
                "return !arguments[0].disabled;",
                vec![json!(b.button(text))],
            ) == json!(true)
        };
        assert!(!enabled("Edit") && !enabled("Copy") && !enabled("Remove"));
        // Click, Shift-click, click, Ctrl-click, Ctrl-click.
        b.click(&b.row(t1));
        assert_eq!(b.selected(), [t1]);
        assert!(enabled("Edit") && enabled("Copy") && enabled("Remove"));
        b.modifier_click(&b.row(t3), Key::Shift);
        assert_eq!(b.selected(), [t1, t2, t3], "Shift selects the range");
        assert!(!enabled("Edit") && !enabled("Copy") && enabled("Remove"));
        b.click(&b.row(t2));
        assert_eq!(b.selected(), [t2], "a plain click selects one row");
        b.modifier_click(&b.row(t3), Key::Control);
        assert_eq!(b.selected(), [t2, t3], "Ctrl adds a row");
        b.docs_shot("tokens-list");
        b.modifier_click(&b.row(t2), Key::Control);
        assert_eq!(b.selected(), [t3], "Ctrl removes a selected row");
        // Meta (Cmd on macOS) extends too.
        b.modifier_click(&b.row(t1), Key::Meta);
        assert_eq!(b.selected(), [t1, t3]);

        // Refresh shows what changed elsewhere.
        let (t4, _) = generate_cli(&stack, "made by the CLI", &["--api", "maven-plugin"]);
        b.click_button("Refresh");
        b.wait_rows(&[t1, t2, t3, t4]);
        b.wait_text("status", "up to date");
        assert_eq!(b.selected(), [t1, t3], "Refresh keeps the selection");

        // Remove works on every selected row: a Shift range of two.
        b.click(&b.row(t2));
        b.modifier_click(&b.row(t3), Key::Shift);
        assert_eq!(b.selected(), [t2, t3]);
        b.click_button("Remove");
        b.wait_text("confirm-text", &format!("Remove 2 tokens ({t2}, {t3})"));
        b.confirm(PASSWORD);
        b.wait_rows(&[t1, t4]);
        b.wait_text("status", &format!("Removed tokens {t2}, {t3}"));
        b.shot("after-remove");
        assert_eq!(ids(&api_tokens(&stack)), [t1, t4]);
    });
}

#[test]
fn step3_the_form_generate_edit_copy_and_regenerate() {
    let (stack, b) = start("step3_form", Screen::Desktop);
    let year = next_year();
    let (template_id, _) = generate_cli(
        &stack,
        "CI deploys",
        &[
            "--api",
            "ide-plugins",
            "--expires-at",
            &format!("31-12-{year}"),
        ],
    );
    b.check(|b| {
        b.sign_in(&stack.public_base(), "alice", PASSWORD);
        b.wait_rows(&[template_id]);

        // Generate: Description, Expires At (typed, and the date picker), API.
        open_form(b, "Generate");
        assert!(b.button_now("Regenerate").is_none(), "Regenerate is on the Edit form only");
        for set in ["IDE Plugins", "Marketplace", "Maven Plugin", "Custom"] {
            b.field(set);
        }
        b.fill("Description", "deploy bot");
        b.fill("Expires At", &format!("15-06-{year}"));
        let picker = b.find("#f-expires-picker");
        assert_eq!(
            b.js("return arguments[0].value;", vec![json!(picker)]),
            json!(format!("{year}-06-15")),
            "the date picker follows the typed date"
        );
        b.js(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input', { bubbles: true }));",
            vec![json!(picker), json!(format!("{year}-07-20"))],
        );
        assert_eq!(
            b.js("return arguments[0].value;", vec![json!(b.field("Expires At"))]),
            json!(format!("20-07-{year}")),
            "the typed field follows the date picker"
        );
        // Custom: the catalogue as a checklist, Search filters as you type.
        b.click(&b.field("Custom"));
        b.field("Only Checked");
        let all = shown_methods(b).len();
        assert!(all > 100, "the public catalogue: {all}");
        b.fill("Search", "control.st");
        let shown = shown_methods(b);
        assert!(
            !shown.is_empty() && shown.len() < all && shown.iter().all(|m| m.to_lowercase().contains("control.st")),
            "{shown:?}"
        );
        assert!(shown.contains(&"environment.Control.StopEnv".to_string()), "{shown:?}");
        b.click(&b.field("environment.Control.StopEnv"));
        b.click(&b.field("environment.Control.StartEnv"));
        assert!(b.wait_text("f-count", "2 checked").starts_with("2 checked"));
        // Each method links to its API documentation, shown on hover.
        let docs = b.js(
            "const box = [...document.querySelectorAll('#f-methods input')].find((i) => i.value === 'environment.Control.StopEnv');
             const link = box.closest('li').querySelector('a.docs');
             return [link.href, link.title, link.target, link.rel, getComputedStyle(link).visibility];",
            vec![],
        );
        assert_eq!(docs[0], "https://docs.jelastic.com/api/#!/api/environment.Control-method-StopEnv");
        assert!(docs[1].as_str().expect("title").starts_with("API documentation: environment.Control.StopEnv"));
        assert_eq!(docs[2], "_blank");
        assert_eq!(docs[3], "noopener noreferrer");
        assert_eq!(docs[4], "hidden", "shown on hover, not before");
        b.hover(&b.field("environment.Control.StopEnv"));
        assert_eq!(
            b.js(
                "const box = [...document.querySelectorAll('#f-methods input')].find((i) => i.value === 'environment.Control.StopEnv');
                 return getComputedStyle(box.closest('li').querySelector('a.docs')).visibility;",
                vec![]
            ),
            "visible"
        );
        // The README's picture: a wider search, the two checked among them.
        b.fill("Search", "environment.control.");
        b.hover(&b.field("environment.Control.StopEnv"));
        b.docs_shot("tokens-generate");
        // Only Checked.
        b.fill("Search", "");
        assert_eq!(shown_methods(b).len(), all);
        b.click(&b.field("Only Checked"));
        assert_eq!(
            shown_methods(b),
            ["environment.Control.StartEnv", "environment.Control.StopEnv"]
        );
        b.shot("only-checked");
        b.click_button("Apply");
        b.confirm(PASSWORD);
        let value = b.token_value();
        close_value(b, &value);
        let tokens = api_tokens(&stack);
        assert_eq!(tokens.len(), 2);
        let custom = &tokens[1];
        let custom_id = custom["id"].as_i64().expect("id");
        assert_eq!(custom["description"], "deploy bot");
        assert_eq!(custom["expiresAt"], format!("{year}-07-21 00:00:00"), "through 20-07");
        assert_eq!(methods(custom), ["environment.Control.StartEnv", "environment.Control.StopEnv"]);
        b.wait_rows(&[template_id, custom_id]);
        assert_eq!(b.rows()[1]["cells"][2], "Custom, 2 methods");
        assert_eq!(b.rows()[1]["cells"][4], format!("20-07-{year}"));

        // Edit: pre-filled; change the description and drop a method.
        b.click(&b.row(custom_id));
        open_form(b, "Edit");
        assert_eq!(b.text_of("form-title"), format!("Edit token {custom_id}"));
        let value_of = |label: &str| b.js("return arguments[0].value;", vec![json!(b.field(label))]);
        assert_eq!(value_of("Description"), "deploy bot");
        assert_eq!(value_of("Expires At"), format!("20-07-{year}"));
        assert!(b.field("Custom").is_selected_now(b));
        b.click(&b.field("Only Checked"));
        assert_eq!(shown_methods(b), ["environment.Control.StartEnv", "environment.Control.StopEnv"]);
        b.button("Regenerate");
        b.shot("edit-form");
        b.fill("Description", "deploy bot v2");
        b.click(&b.field("environment.Control.StartEnv"));
        b.click_button("Apply");
        b.confirm(PASSWORD);
        b.wait_dialog("form-dialog", false);
        b.wait_text("status", &format!("Token {custom_id} saved"));
        let edited = api_tokens(&stack)[1].clone();
        assert_eq!(edited["description"], "deploy bot v2");
        assert_eq!(methods(&edited), ["environment.Control.StopEnv"]);
        assert_eq!(edited["expiresAt"], custom["expiresAt"], "the expiry is untouched");
        assert_eq!(b.rows()[1]["cells"][1], "deploy bot v2");
        assert_eq!(b.rows()[1]["cells"][2], "Custom, 1 method");

        // Copy: the form pre-filled from the selected token; Apply makes a new one.
        b.click(&b.row(template_id));
        open_form(b, "Copy");
        assert!(b.button_now("Regenerate").is_none());
        assert_eq!(value_of("Description"), "CI deploys");
        assert_eq!(value_of("Expires At"), format!("31-12-{year}"));
        assert!(b.field("IDE Plugins").is_selected_now(b));
        b.shot("copy-form");
        b.click_button("Apply");
        b.confirm(PASSWORD);
        let copy_value = b.token_value();
        close_value(b, &copy_value);
        let tokens = api_tokens(&stack);
        assert_eq!(tokens.len(), 3);
        let (original, copy) = (&tokens[0], &tokens[2]);
        assert_eq!(copy["description"], "CI deploys");
        assert_eq!(copy["tokenTemplate"]["id"], "ide-plugins");
        assert_eq!(copy["expiresAt"], original["expiresAt"]);

        // Regenerate (the Edit form's link): a new value; the old one stops working.
        eventually(&stack, STOPENV, &value, 0);
        b.click(&b.row(custom_id));
        open_form(b, "Edit");
        b.click_button("Regenerate");
        b.wait_text("confirm-text", "stops working");
        b.confirm(PASSWORD);
        let new_value = b.token_value();
        assert_ne!(new_value, value);
        b.wait_text("status", &format!("Token {custom_id} regenerated"));
        close_value(b, &new_value);
        eventually(&stack, STOPENV, &value, 701);
        eventually(&stack, STOPENV, &new_value, 0);
    });
}

#[test]
fn step4_every_change_asks_for_the_password_and_a_wrong_one_changes_nothing() {
    let (stack, b) = start("step4_wrong_password", Screen::Desktop);
    let (id, value) = generate_cli(
        &stack,
        "keep me",
        &["--method", "environment.Control.StopEnv"],
    );
    b.check(|b| {
        b.sign_in(&stack.public_base(), "alice", PASSWORD);
        b.wait_rows(&[id]);
        let before = api_tokens(&stack);
        let wrong = |what: &str| {
            b.wait_dialog("confirm-dialog", true);
            b.field("Password");
            b.button("Confirm");
            b.confirm("not the password");
            let error = b.wait_text("confirm-error", "wrong password");
            assert_eq!(
                error, "wrong password; nothing was changed",
                "{what}: the API's error"
            );
            assert!(
                b.dialog_open("confirm-dialog"),
                "{what}: the dialog stays open"
            );
            b.shot(&format!("wrong-password-{what}"));
            assert_eq!(api_tokens(&stack), before, "{what}: nothing changed");
            b.click_button("Cancel");
            b.wait_dialog("confirm-dialog", false);
        };
        // Generate.
        open_form(b, "Generate");
        b.fill("Description", "never made");
        b.click_button("Apply");
        wrong("generate");
        b.click_button("Cancel");
        b.wait_dialog("form-dialog", false);
        // Edit.
        b.click(&b.row(id));
        open_form(b, "Edit");
        b.fill("Description", "never renamed");
        b.click_button("Apply");
        wrong("edit");
        // Regenerate.
        b.click_button("Regenerate");
        wrong("regenerate");
        b.click_button("Cancel");
        b.wait_dialog("form-dialog", false);
        // Remove.
        b.click_button("Remove");
        wrong("remove");
        assert_eq!(b.rows()[0]["cells"][1], "keep me");
        eventually(&stack, STOPENV, &value, 0);
        let audit = stack.admin_ok(&["--json", "audit", "--user", "alice", "--limit", "20"], "");
        let failed = audit
            .as_array()
            .expect("audit")
            .iter()
            .filter(|e| e["action"] == "auth.failed")
            .count();
        assert_eq!(failed, 4, "each wrong password is audited");
        // While another check of alice's password is under way (here: a slot held as one
        // waiting out its back-off holds it), the right password is refused unchecked and the
        // dialog says when to retry.
        let db = rusqlite::Connection::open(stack.dir.path().join("store/pat-admin.db"))
            .expect("the store");
        let in_a_minute = (pat_e2e::unix_now() + 60) * 1000;
        db.execute(
            "INSERT INTO password_checks (key, holder, ends_at, stale_at) VALUES ('login:alice', 1, ?1, ?1)",
            [in_a_minute as i64],
        )
        .expect("a slot");
        b.click_button("Remove");
        b.confirm(PASSWORD);
        let error = b.wait_text("confirm-error", "too many attempts");
        assert!(error.contains("retry in"), "{error}");
        assert!(b.dialog_open("confirm-dialog"), "the dialog stays open");
        b.shot("too-many-attempts");
        db.execute("DELETE FROM password_checks", [])
            .expect("the slot given back");
        assert_eq!(api_tokens(&stack), before, "nothing changed");
        b.click_button("Cancel");
        b.wait_dialog("confirm-dialog", false);
        // The right password then works.
        b.click_button("Remove");
        b.confirm(PASSWORD);
        b.wait_rows(&[]);
        assert!(api_tokens(&stack).is_empty());
        eventually(&stack, STOPENV, &value, 701);
    });
}

#[test]
fn step5_a_new_value_is_shown_once_with_copy_and_download() {
    let (stack, b) = start("step5_new_value", Screen::Desktop);
    b.check(|b| {
        b.sign_in(&stack.public_base(), "alice", PASSWORD);
        let history = b.js("return history.length;", vec![]);
        open_form(b, "Generate");
        b.fill("Description", "shown once");
        b.click_button("Apply");
        b.confirm(PASSWORD);
        let value = b.token_value();
        assert!(value.starts_with("pate_") && value.len() > 30, "{value}");
        let field = b.field("Token");
        assert_eq!(
            b.js(
                "return [arguments[0].readOnly, arguments[0].type];",
                vec![json!(field)]
            ),
            json!([true, "text"])
        );
        assert!(
            b.text_of("value-once")
                .contains("will not be displayed again")
        );
        b.button("Copy");
        b.button("Download");
        b.shot("new-value");
        b.click_button("Copy");
        assert_eq!(
            b.wait_text("value-status", "Copied"),
            "Copied to the clipboard."
        );
        let id = api_tokens(&stack)[0]["id"].as_i64().expect("id");
        b.click_button("Download");
        let name = format!("pat-token-{id}.txt");
        b.wait_until("the download", || b.downloaded(&name).is_some());
        assert_eq!(b.downloaded(&name).expect("file"), format!("{value}\n"));
        b.wait_text("value-status", &name);
        // Closing forgets it: nowhere in the page, no storage, no history entry.
        close_value(b, &value);
        assert_eq!(b.js("return history.length;", vec![]), history);
        assert!(!b.url().contains("pate_"));
        // The API lists it without a value, ever.
        assert!(api_tokens(&stack).iter().all(|t| t.get("key").is_none()));
        // Escape closes it too, and forgets it as well.
        b.click(&b.row(id));
        open_form(b, "Edit");
        b.click_button("Regenerate");
        b.confirm(PASSWORD);
        let second = b.token_value();
        assert_ne!(second, value);
        b.press(Key::Escape, None);
        b.wait_dialog("value-dialog", false);
        assert_no_value_in_page(b, &second);
        b.shot("closed");
    });
}

/// A platform call through Envoy with `token`, from a client bound to `from` (127.0.0.x).
fn platform_from(stack: &Stack, token: &str, from: &str) -> Value {
    let client = reqwest::blocking::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().expect("ip"))
        .pool_max_idle_per_host(0)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let body = client
        .get(stack.url(&format!("{STOPENV}?envName=e2e&session={token}")))
        .send()
        .and_then(|r| r.text())
        .expect("answered");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Waits until `token` gets `code` from `from` (0: allowed), then checks a few more times.
fn eventually_from(stack: &Stack, token: &str, from: &str, code: i64) {
    within(Duration::from_secs(15), || {
        platform_from(stack, token, from)["result"] == code
    })
    .unwrap_or_else(|| panic!("from {from}: {}", platform_from(stack, token, from)));
    for _ in 0..6 {
        let answer = platform_from(stack, token, from);
        assert_eq!(answer["result"], code, "from {from}: {answer}");
    }
}

#[test]
fn the_environments_and_rate_limit_fields() {
    let (stack, b) = start("envs_and_rate_limit", Screen::Desktop);
    b.check(|b| {
        b.sign_in(&stack.public_base(), "alice", PASSWORD);
        // Generate: both fields, checked before the password is asked; hostile text is text.
        open_form(b, "Generate");
        b.field("Environments");
        b.field("Rate limit");
        assert!(b.text_of("f-envs-hint").contains("Empty: any environment"));
        b.fill("Description", "staging deploys");
        check_method(b, "stopenv", "environment.Control.StopEnv");
        b.fill("Environments", "my-app, <b>x</b>");
        b.click_button("Apply");
        let error = b.wait_text("form-error", "is not an environment name");
        assert!(error.contains("\"<b>x</b>\""), "shown as text: {error}");
        assert!(!b.dialog_open("confirm-dialog"), "no password asked");
        assert_eq!(b.focused_id(), "f-envs");
        b.fill("Environments", "My-App, staging");
        b.fill("Rate limit", "10/h");
        b.click_button("Apply");
        b.wait_text("form-error", "is not a rate limit");
        assert_eq!(b.focused_id(), "f-rate-limit");
        assert!(api_tokens(&stack).is_empty(), "nothing created");
        b.fill("Rate limit", "10/s");
        b.shot("envs-and-rate-filled");
        b.click_button("Apply");
        b.confirm(PASSWORD);
        let value = b.token_value();
        close_value(b, &value);
        let token = api_tokens(&stack)[0].clone();
        let id = token["id"].as_i64().expect("id");
        assert_eq!(token["envNames"], json!(["my-app", "staging"]));
        assert_eq!(token["rateLimit"], "10/s");
        b.wait_rows(&[id]);
        assert_eq!(b.rows()[0]["cells"][7], "my-app, staging");
        assert_eq!(b.rows()[0]["cells"][8], "10/s");

        // Copy keeps both (pre-filled).
        b.click(&b.row(id));
        open_form(b, "Copy");
        let value_of =
            |label: &str| b.js("return arguments[0].value;", vec![json!(b.field(label))]);
        assert_eq!(value_of("Environments"), json!("my-app, staging"));
        assert_eq!(value_of("Rate limit"), json!("10/s"));
        b.click_button("Apply");
        b.confirm(PASSWORD);
        let copy_value = b.token_value();
        close_value(b, &copy_value);
        let copy = api_tokens(&stack)[1].clone();
        assert_eq!(copy["envNames"], token["envNames"]);
        assert_eq!(copy["rateLimit"], token["rateLimit"]);

        // Edit: emptied, any environment and no limit again.
        b.click(&b.row(id));
        open_form(b, "Edit");
        b.fill("Environments", "");
        b.fill("Rate limit", "");
        b.click_button("Apply");
        b.confirm(PASSWORD);
        b.wait_dialog("form-dialog", false);
        b.wait_text("status", &format!("Token {id} saved"));
        b.wait_until("the row says any", || b.rows()[0]["cells"][7] == "any");
        assert_eq!(b.rows()[0]["cells"][8], "none");
        let edited = api_tokens(&stack)[0].clone();
        assert_eq!(
            (&edited["envNames"], &edited["rateLimit"]),
            (&Value::Null, &Value::Null)
        );

        // The account-wide default shows as such on tokens without a limit of their own.
        stack.admin_ok(&["config", "set", "default-rate-limit", "600/min"], "");
        b.click_button("Refresh");
        b.wait_until("the default shown", || {
            b.rows()[0]["cells"][8] == "600/min (default)"
        });
        assert_eq!(b.rows()[1]["cells"][8], "10/s", "the copy keeps its own");
        b.shot("default-rate-limit");
    });
}

#[test]
fn the_allowed_ips_field_and_the_grace_choice_when_regenerating() {
    let (stack, b) = start("allowed_ips_and_grace", Screen::Desktop);
    b.check(|b| {
        b.sign_in(&stack.public_base(), "alice", PASSWORD);
        // Generate: the Allowed IPs field, checked before the password is asked.
        open_form(b, "Generate");
        b.field("Allowed IPs");
        assert!(
            b.text_of("f-allowed-ips-hint")
                .contains("Empty: any address")
        );
        b.fill("Description", "office only");
        check_method(b, "stopenv", "environment.Control.StopEnv");
        b.fill("Allowed IPs", "127.0.0.2, <b>office</b>");
        b.click_button("Apply");
        let error = b.wait_text("form-error", "is not an IP network");
        assert!(
            error.contains("\"<b>office</b>\""),
            "shown as text: {error}"
        );
        assert!(!b.dialog_open("confirm-dialog"), "no password asked");
        assert_eq!(
            b.js(
                "return document.getElementById('f-allowed-ips').getAttribute('aria-invalid');",
                vec![]
            ),
            json!("true")
        );
        assert_eq!(b.focused_id(), "f-allowed-ips");
        b.shot("allowed-ips-invalid");
        // Host bits pass the page's light check; the service refuses them, changing nothing.
        b.fill("Allowed IPs", "127.0.0.1/24");
        b.click_button("Apply");
        b.confirm(PASSWORD);
        let error = b.wait_text("form-error", "host bits");
        assert!(error.contains("127.0.0.0/24"), "{error}");
        assert!(api_tokens(&stack).is_empty(), "nothing created");
        b.fill("Allowed IPs", "127.0.0.2, ::1");
        b.shot("allowed-ips-filled");
        b.click_button("Apply");
        b.confirm(PASSWORD);
        let value = b.token_value();
        close_value(b, &value);
        let token = api_tokens(&stack)[0].clone();
        let id = token["id"].as_i64().expect("id");
        assert_eq!(token["allowedIps"], json!(["127.0.0.2/32", "::1/128"]));
        b.wait_rows(&[id]);
        assert_eq!(b.rows()[0]["cells"][3], "127.0.0.2/32, ::1/128");
        eventually_from(&stack, &value, "127.0.0.2", 0);
        eventually_from(&stack, &value, "127.0.0.1", 702);

        // Copy keeps the list (pre-filled).
        b.click(&b.row(id));
        open_form(b, "Copy");
        assert_eq!(
            b.js(
                "return arguments[0].value;",
                vec![json!(b.field("Allowed IPs"))]
            ),
            json!("127.0.0.2/32, ::1/128")
        );
        b.click_button("Apply");
        b.confirm(PASSWORD);
        let copy_value = b.token_value();
        close_value(b, &copy_value);
        let copy = api_tokens(&stack)[1].clone();
        assert_eq!(copy["allowedIps"], token["allowedIps"]);
        eventually_from(&stack, &copy_value, "127.0.0.1", 702);

        // Edit: emptied, the token works from anywhere again.
        b.click(&b.row(id));
        open_form(b, "Edit");
        assert_eq!(
            b.js(
                "return arguments[0].value;",
                vec![json!(b.field("Allowed IPs"))]
            ),
            json!("127.0.0.2/32, ::1/128")
        );
        b.fill("Allowed IPs", "");
        b.click_button("Apply");
        b.confirm(PASSWORD);
        b.wait_dialog("form-dialog", false);
        b.wait_text("status", &format!("Token {id} saved"));
        b.wait_until("the row says any", || b.rows()[0]["cells"][3] == "any");
        assert_eq!(api_tokens(&stack)[0]["allowedIps"], json!([]));
        eventually_from(&stack, &value, "127.0.0.1", 0);

        // Regenerate with the old value kept working for 1 hour.
        b.click(&b.row(id));
        open_form(b, "Edit");
        let grace = b.field("Keep the old value working for");
        assert_eq!(
            b.js(
                "return [...arguments[0].options].map((o) => o.textContent);",
                vec![json!(grace)]
            ),
            json!(["none: it stops at once", "1 hour", "1 day", "7 days"])
        );
        assert_eq!(
            b.js("return arguments[0].value;", vec![json!(grace)]),
            json!("0")
        );
        b.choose("Keep the old value working for", "1 hour");
        b.shot("grace-choice");
        b.click_button("Regenerate");
        b.wait_text("confirm-text", "keeps working for 1 hour");
        b.confirm(PASSWORD);
        let regenerated = b.token_value();
        assert_ne!(regenerated, value);
        let status = b.wait_text("status", &format!("Token {id} regenerated"));
        assert!(status.contains("the old value works until"), "{status}");
        close_value(b, &regenerated);
        let listed = api_tokens(&stack)[0].clone();
        let until = listed["oldKeyExpiresAt"].as_str().expect("until when");
        // `yyyy-MM-dd HH:mm` of it, as the page writes `dd-mm-yyyy HH:MM UTC`.
        let (date, clock) = until.split_once(' ').expect("date and time");
        let parts: Vec<&str> = date.split('-').collect();
        let shown = format!("{}-{}-{} {} UTC", parts[2], parts[1], parts[0], &clock[..5]);
        b.wait_until("the list says until when", || {
            b.rows()[0]["cells"][6]
                .as_str()
                .is_some_and(|c| c == format!("active old value works until {shown}"))
        });
        b.shot("old-value-until");
        eventually(&stack, STOPENV, &value, 0);
        eventually(&stack, STOPENV, &regenerated, 0);
        // The Edit form says so too; regenerating with "none" ends the window at once.
        open_form(b, "Edit");
        assert!(
            b.text_of("f-old-value").contains(&shown),
            "{}",
            b.text_of("f-old-value")
        );
        b.click_button("Regenerate");
        b.wait_text("confirm-text", "stops working");
        b.confirm(PASSWORD);
        let third = b.token_value();
        b.wait_text("status", "the old value no longer works");
        close_value(b, &third);
        eventually(&stack, STOPENV, &value, 701);
        eventually(&stack, STOPENV, &regenerated, 701);
        eventually(&stack, STOPENV, &third, 0);
        b.wait_until("no old value in the list", || {
            b.rows()[0]["cells"][6] == "active"
        });
        assert_eq!(b.text_of("banner-text"), "", "no error along the way");
    });
}

#[test]
fn the_flow_end_to_end() {
    let (stack, b) = start("flow_end_to_end", Screen::Desktop);
    flow(&stack, &b);
}

/// The same flow in platform mode: signed in with the platform's account, every change
/// confirmed with the platform password.
#[test]
fn the_flow_end_to_end_in_platform_mode() {
    let stack = Stack::start_platform();
    let b = Browser::start("flow_end_to_end_platform", Screen::Desktop);
    flow(&stack, &b);
}

fn flow(stack: &Stack, b: &Browser) {
    let (login, password, account) = alice(stack);
    b.check(|b| {
        b.sign_in(&stack.public_base(), login, password);
        b.wait_rows(&[]);
        assert!(b.text_of("empty").contains("No tokens yet"));
        // A Custom token found through Search and Only Checked.
        open_form(b, "Generate");
        b.fill("Description", "flow");
        check_method(b, "stopenv", "environment.Control.StopEnv");
        check_method(b, "getenvinfo", "environment.Control.GetEnvInfo");
        b.fill("Search", "");
        b.click(&b.field("Only Checked"));
        assert_eq!(
            shown_methods(b),
            [
                "environment.Control.GetEnvInfo",
                "environment.Control.StopEnv"
            ]
        );
        b.shot("custom-checked");
        b.click_button("Apply");
        b.confirm(password);
        let value = b.token_value();
        b.shot("value");
        close_value(b, &value);
        let first = api_tokens(stack)[0]["id"].as_i64().expect("id");
        // Used through Envoy: allowed in scope, denied out of it.
        eventually(stack, STOPENV, &value, 0);
        eventually(stack, DELETEENV, &value, 702);
        // Edit it.
        b.click(&b.row(first));
        open_form(b, "Edit");
        b.fill("Description", "flow, edited");
        b.click_button("Apply");
        b.confirm(password);
        b.wait_dialog("form-dialog", false);
        b.wait_until("the edited row", || {
            b.rows()[0]["cells"][1] == "flow, edited"
        });
        eventually(stack, STOPENV, &value, 0);
        // Regenerate it.
        open_form(b, "Edit");
        b.click_button("Regenerate");
        b.confirm(password);
        let regenerated = b.token_value();
        close_value(b, &regenerated);
        eventually(stack, STOPENV, &value, 701);
        eventually(stack, STOPENV, &regenerated, 0);
        // A second token; select both with Ctrl and remove them.
        open_form(b, "Generate");
        b.fill("Description", "second");
        b.click(&b.field("Maven Plugin"));
        b.click_button("Apply");
        b.confirm(password);
        let second_value = b.token_value();
        close_value(b, &second_value);
        let second = api_tokens(stack)[1]["id"].as_i64().expect("id");
        b.wait_rows(&[first, second]);
        b.click(&b.row(first));
        b.modifier_click(&b.row(second), Key::Control);
        assert_eq!(b.selected(), [first, second]);
        b.shot("two-selected");
        b.click_button("Remove");
        b.confirm(password);
        b.wait_rows(&[]);
        b.wait_text("status", &format!("Removed tokens {first}, {second}"));
        assert!(api_tokens(stack).is_empty());
        eventually(stack, STOPENV, &regenerated, 701);
        b.shot("all-removed");
        // Every change came from the page through Envoy, as the API's client.
        let audit = stack.admin_ok(&["--json", "audit", "--user", account, "--limit", "50"], "");
        let by_page = |action: &str| {
            audit
                .as_array()
                .expect("audit")
                .iter()
                .filter(|e| e["action"] == action && e["actor"] == "api 127.0.0.1")
                .count()
        };
        assert_eq!(
            [
                by_page("token.generate"),
                by_page("token.edit"),
                by_page("token.regenerate"),
                by_page("token.remove")
            ],
            [2, 1, 1, 2]
        );
        assert_eq!(b.text_of("banner-text"), "", "no error along the way");
    });
}

#[test]
fn an_xss_description_is_shown_literally() {
    let (stack, b) = start("xss_description", Screen::Desktop);
    let script = "\"><script>window.pwned = 1</script>";
    let (cli_id, _) = generate_cli(&stack, script, &["--api", "ide-plugins"]);
    let img = "<img src=x onerror=alert(1)>";
    b.check(|b| {
        b.sign_in(&stack.public_base(), "alice", PASSWORD);
        b.wait_rows(&[cli_id]);
        open_form(b, "Generate");
        b.fill("Description", img);
        b.click_button("Apply");
        b.confirm(PASSWORD);
        let value = b.token_value();
        close_value(b, &value);
        let id = api_tokens(&stack)[1]["id"].as_i64().expect("id");
        b.wait_rows(&[cli_id, id]);
        assert_eq!(b.rows()[0]["cells"][1], script);
        assert_eq!(b.rows()[1]["cells"][1], img);
        let dom = b.js(
            "return [document.querySelectorAll('#token-rows img').length, document.querySelectorAll('img').length,
                     document.scripts.length, window.pwned === undefined];",
            vec![],
        );
        assert_eq!(dom, json!([0, 0, 1, true]), "no element was made from the descriptions");
        b.click(&b.row(id));
        open_form(b, "Edit");
        assert_eq!(
            b.js("return arguments[0].value;", vec![json!(b.field("Description"))]),
            img
        );
        b.shot("xss-edit");
        b.press(Key::Escape, None);
        b.wait_dialog("form-dialog", false);
        assert!(b.alert_absent(), "no alert");
        assert_eq!(b.text_of("banner-text"), "", "no CSP violation or error");
        b.shot("xss-list");
    });
}

#[test]
fn the_keyboard_tab_enter_escape_and_arrows() {
    let (stack, b) = start("keyboard", Screen::Desktop);
    let (t1, _) = generate_cli(&stack, "one", &["--api", "ide-plugins"]);
    let (t2, _) = generate_cli(&stack, "two", &["--api", "ide-plugins"]);
    let (t3, _) = generate_cli(&stack, "three", &["--api", "ide-plugins"]);
    b.check(|b| {
        b.goto(&stack.url("/tokens/"));
        b.field("Login");
        assert_eq!(b.focused_id(), "signin-login", "Login has the focus");
        b.keys("alice");
        b.press(Key::Tab, None);
        assert_eq!(b.focused_id(), "signin-password");
        b.keys(PASSWORD);
        b.press(Key::Enter, None);
        b.wait_rows(&[t1, t2, t3]);
        b.wait_until("the first row focused", || {
            b.js("return document.activeElement.dataset.id;", vec![]) == json!(t1.to_string())
        });
        let focused_row = || {
            b.js("return Number(document.activeElement.dataset.id);", vec![])
                .as_i64()
                .unwrap_or(0)
        };
        b.press(Key::Down, None);
        assert_eq!((focused_row(), b.selected()), (t2, vec![t2]));
        b.press(Key::Down, Some(Key::Shift));
        assert_eq!((focused_row(), b.selected()), (t3, vec![t2, t3]));
        b.press(Key::Up, None);
        assert_eq!(b.selected(), [t2]);
        b.press(Key::Home, None);
        assert_eq!((focused_row(), b.selected()), (t1, vec![t1]));
        b.press(Key::End, Some(Key::Control));
        assert_eq!(
            (focused_row(), b.selected()),
            (t3, vec![t1]),
            "Ctrl moves without selecting"
        );
        b.press(Key::Space, Some(Key::Control));
        assert_eq!(b.selected(), [t1, t3], "Ctrl+Space adds");
        b.shot("keyboard-selection");
        // Enter edits the focused row; Escape closes the form.
        b.press(Key::Enter, None);
        b.wait_dialog("form-dialog", true);
        assert_eq!(b.text_of("form-title"), format!("Edit token {t3}"));
        assert_eq!(b.focused_id(), "f-description");
        b.press(Key::Escape, None);
        b.wait_dialog("form-dialog", false);
        // Delete asks to remove; Escape cancels.
        b.row(t3).click_now(b);
        b.press(Key::Delete, None);
        b.wait_dialog("confirm-dialog", true);
        assert_eq!(b.focused_id(), "confirm-password");
        b.press(Key::Escape, None);
        b.wait_dialog("confirm-dialog", false);
        assert_eq!(ids(&api_tokens(&stack)), [t1, t2, t3], "nothing removed");
        // Generate with the keyboard alone: Shift+Tab to the toolbar, arrows, Enter.
        b.row(t1).click_now(b);
        b.press(Key::Tab, Some(Key::Shift));
        assert_eq!(b.focused_id(), "tool-refresh");
        b.press(Key::Right, None);
        assert_eq!(
            b.focused_id(),
            "tool-generate",
            "the arrows wrap round the toolbar"
        );
        b.press(Key::Enter, None);
        b.wait_dialog("form-dialog", true);
        assert_eq!(b.focused_id(), "f-description");
        b.keys("typed");
        b.press(Key::Enter, None);
        b.wait_dialog("confirm-dialog", true);
        assert_eq!(b.focused_id(), "confirm-password");
        b.keys(PASSWORD);
        b.press(Key::Enter, None);
        let value = b.token_value();
        assert_eq!(b.focused_id(), "value-token");
        b.press(Key::Escape, None);
        b.wait_dialog("value-dialog", false);
        assert_no_value_in_page(b, &value);
        assert_eq!(api_tokens(&stack).len(), 4);
        assert_eq!(api_tokens(&stack)[3]["description"], "typed");
        b.shot("keyboard-done");
    });
}

trait ClickNow {
    fn click_now(&self, b: &Browser);
}

impl ClickNow for fantoccini::elements::Element {
    fn click_now(&self, b: &Browser) {
        b.click(self);
    }
}

#[test]
fn a_phone_screen_390_px_wide() {
    let (stack, b) = start("phone", Screen::Phone);
    let (t1, _) = generate_cli(&stack, "laptop", &["--api", "ide-plugins"]);
    b.check(|b| {
        b.goto(&stack.url("/tokens/"));
        assert_eq!(b.js("return innerWidth;", vec![]), json!(390));
        let no_sideways_scroll = || {
            b.js(
                "return document.documentElement.scrollWidth <= innerWidth;",
                vec![],
            ) == json!(true)
        };
        assert!(no_sideways_scroll());
        b.shot("phone-sign-in");
        b.sign_in(&stack.public_base(), "alice", PASSWORD);
        b.wait_rows(&[t1]);
        assert!(no_sideways_scroll(), "the list fits");
        // Every tool is on screen.
        let off = b.js(
            "return [...document.querySelectorAll('#tools button')].filter((x) => { const r = x.getBoundingClientRect(); return r.left < 0 || r.right > innerWidth; }).length;",
            vec![],
        );
        assert_eq!(off, json!(0));
        b.shot("phone-list");
        open_form(b, "Generate");
        let fits = b.js(
            "const r = document.getElementById('form-dialog').getBoundingClientRect(); return r.left >= 0 && r.right <= innerWidth;",
            vec![],
        );
        assert_eq!(fits, json!(true), "the form fits the screen");
        b.fill("Description", "phone");
        check_method(b, "stopenv", "environment.Control.StopEnv");
        b.shot("phone-form");
        b.click_button("Apply");
        b.confirm(PASSWORD);
        let value = b.token_value();
        b.shot("phone-value");
        close_value(b, &value);
        let id = api_tokens(&stack)[1]["id"].as_i64().expect("id");
        b.wait_rows(&[t1, id]);
        eventually(&stack, STOPENV, &value, 0);
        // A tap selects a row; Edit and Remove work on it.
        b.click(&b.row(id));
        assert_eq!(b.selected(), [id]);
        open_form(b, "Edit");
        b.fill("Description", "phone, edited");
        b.click_button("Apply");
        b.confirm(PASSWORD);
        b.wait_dialog("form-dialog", false);
        b.wait_until("the edited row", || b.rows()[1]["cells"][1] == "phone, edited");
        b.click(&b.row(t1));
        b.click_button("Remove");
        b.confirm(PASSWORD);
        b.wait_rows(&[id]);
        assert!(no_sideways_scroll());
        b.shot("phone-empty");
    });
}

/// A pretend edge that accepts connections and never answers: pushes to it time out.
fn silent_edge() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(64) {
            held.push(stream);
        }
    });
    url
}

#[test]
fn errors_and_progress_are_shown_in_the_page() {
    let (mut stack, b) = start("errors_and_progress", Screen::Desktop);
    stack.admin_ok(&["config", "set", "push-timeout", "2"], "");
    stack.admin_ok(&["config", "set", "push-deadline", "3"], "");
    stack.admin_ok(&["edge", "add", &silent_edge()], "");
    b.check(|b| {
        b.sign_in(&stack.public_base(), "alice", PASSWORD);
        // An API error: a past date, refused by the service, shown in the form.
        open_form(b, "Generate");
        b.fill("Description", "too late");
        b.fill("Expires At", "01-01-2020");
        b.click_button("Apply");
        b.confirm(PASSWORD);
        let error = b.wait_text("form-error", "past");
        assert!(error.contains("01-01-2020"), "{error}");
        b.shot("api-error");
        // A long change: progress while it publishes, then what publishing did.
        b.fill("Expires At", "");
        b.click_button("Apply");
        b.confirm(PASSWORD);
        b.wait_text("confirm-progress-text", "publishing to the edges");
        assert_eq!(
            b.js(
                "return [document.getElementById('confirm-button').getAttribute('aria-busy'), document.getElementById('confirm-button').disabled];",
                vec![]
            ),
            json!(["true", true])
        );
        b.shot("in-progress");
        let value = b.token_value();
        close_value(b, &value);
        let status = b.wait_text("status", "did not accept");
        assert!(status.contains("1 of 2 edges did not accept"), "{status}");
        b.shot("publish-result");
        // The token service down: Envoy answers 503, and the page says so.
        stack.kill_origin();
        b.click_button("Refresh");
        let banner = b.wait_text("banner-text", "HTTP 503");
        assert!(banner.starts_with("Could not load your tokens"), "{banner}");
        assert!(b.find("#tokens-view").is_displayed_now(b), "never a blank page");
        b.shot("service-down");
        // The network gone: the page says that too.
        stack.kill_envoy();
        b.click_button("Refresh");
        b.wait_text("banner-text", "Cannot reach the token service");
        b.shot("network-down");
    });
}

#[test]
fn the_page_and_its_assets_have_strict_headers_on_both_listeners() {
    let stack = Stack::start();
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client");
    let csp = pat_admin::api::page::CSP;
    assert_eq!(
        csp,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    for base in [
        stack.public_base(),
        format!("http://127.0.0.1:{}", stack.ports.api),
    ] {
        for (path, kind, cache) in [
            ("/tokens/", "text/html; charset=utf-8", "no-store"),
            (
                "/tokens/app.js",
                "text/javascript; charset=utf-8",
                "no-cache",
            ),
            ("/tokens/app.css", "text/css; charset=utf-8", "no-cache"),
        ] {
            let response = http.get(format!("{base}{path}")).send().expect("request");
            assert_eq!(response.status(), 200, "{base}{path}");
            let h = response.headers();
            let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
            assert_eq!(header("content-type"), kind, "{base}{path}");
            assert_eq!(header("content-security-policy"), csp, "{base}{path}");
            assert_eq!(header("x-content-type-options"), "nosniff");
            assert_eq!(header("referrer-policy"), "no-referrer");
            assert_eq!(header("x-frame-options"), "DENY");
            assert_eq!(header("cache-control"), cache, "{base}{path}");
            assert!(h.get("set-cookie").is_none(), "no cookie");
            let body = response.text().expect("body");
            assert!(!body.is_empty());
        }
        let redirect = http.get(format!("{base}/tokens")).send().expect("request");
        assert_eq!(redirect.status(), 308);
        assert_eq!(redirect.headers()["location"], "tokens/");
        let missing = http
            .get(format!("{base}/tokens/nothing.js"))
            .send()
            .expect("request");
        assert_eq!(missing.status(), 404);
        assert_eq!(
            missing.headers()["content-security-policy"].to_str().ok(),
            Some(csp)
        );
    }
    // The page's own calls are what any client sends: POST form bodies, the session a form
    // field. Through Envoy they pass the filter.
    let session = api_session(&stack);
    let answer = Client::new().post(
        &stack.api_url("GetTokens", ""),
        "application/x-www-form-urlencoded;charset=UTF-8",
        format!("session={session}").into_bytes(),
    );
    assert_eq!(answer.json["result"], 0, "{answer:?}");
    let answer = Client::new().post(
        &stack.api_url("GetTokenApiList", ""),
        "application/x-www-form-urlencoded;charset=UTF-8",
        format!("showPrivate=true&session={session}").into_bytes(),
    );
    let list = answer.json["tokenPermissions"].as_array().expect("list");
    assert!(list.iter().all(|m| {
        m["docs"]
            .as_str()
            .is_some_and(|d| d.starts_with("https://"))
    }));
}
