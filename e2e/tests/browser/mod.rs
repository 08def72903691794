//! Headless Chromium driven through chromedriver (WebDriver, with `fantoccini`), for the
//! Access Tokens page's tests. Synchronous on the outside: every WebDriver command runs on a
//! small Tokio runtime of the browser's own, so tests mix it freely with the blocking
//! [`pat_e2e`] helpers.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test installs them), or
//! `$PAT_E2E_CHROMIUM` / `$PAT_E2E_CHROMEDRIVER`. Each test's screenshots go to
//! `target/browser-screenshots/<test>/`; a failing test also leaves `failure.png` and
//! `failure.txt` (the page's visible error texts and body text) there.

#![allow(dead_code, unreachable_pub)]

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions, MouseActions, PointerAction};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use pat_e2e::{Proc, free_port, target_dir, wait_for_port};
use serde_json::{Value, json};
use tempfile::TempDir;

/// How long a test waits for the page to show something.
pub const WAIT: Duration = Duration::from_secs(15);

/// The screen a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Screen {
    /// A laptop: a 1280×800 window.
    Desktop,
    /// A phone: 390×844 CSS pixels (Chromium's mobile emulation).
    Phone,
}

/// One headless Chromium with its chromedriver, killed when dropped.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    _driver: Proc,
    _profile: TempDir,
    /// Where downloads land.
    pub downloads: TempDir,
    shots: PathBuf,
    count: Cell<u32>,
}

fn program(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "{} is missing: install Debian's chromium and chromium-driver (scripts/test does), or set {var}",
        path.display()
    );
    path
}

impl Browser {
    /// Starts chromedriver and a headless Chromium on `screen`; screenshots of test `name`.
    pub fn start(name: &str, screen: Screen) -> Self {
        let shots = target_dir().join("browser-screenshots").join(name);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("screenshot directory");
        let port = free_port();
        let driver = Proc::spawn(
            "chromedriver",
            Command::new(program("PAT_E2E_CHROMEDRIVER", "/usr/bin/chromedriver"))
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(shots.join("chromedriver.log")).expect("log")),
        );
        wait_for_port(port);
        let profile = TempDir::new().expect("profile dir");
        let downloads = TempDir::new().expect("downloads dir");
        let mut args = vec![
            // As root, on a closed network: no sandbox, and nothing that calls home.
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-features=Translate,MediaRouter,OptimizationHints".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut options = json!({
            "binary": program("PAT_E2E_CHROMIUM", "/usr/bin/chromium"),
            "prefs": {
                "download.default_directory": downloads.path(),
                "download.prompt_for_download": false,
            },
        });
        match screen {
            Screen::Desktop => args.push("--window-size=1280,800".into()), // then fitted below
            Screen::Phone => {
                options["mobileEmulation"] = json!({
                    "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 1.0, "touch": false }
                });
            }
        }
        options["args"] = json!(args);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), options);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let client = rt
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .unwrap_or_else(|e| panic!("cannot start Chromium through chromedriver: {e}"));
        if let Screen::Desktop = screen {
            // Headless windows have a frame too: make the viewport itself 1280×800.
            let frame = rt
                .block_on(client.execute(
                    "return [outerWidth - innerWidth, outerHeight - innerHeight];",
                    vec![],
                ))
                .expect("window frame");
            let extra = |i: usize| u32::try_from(frame[i].as_u64().unwrap_or(0)).unwrap_or(0);
            rt.block_on(client.set_window_size(1280 + extra(0), 800 + extra(1)))
                .expect("window size");
        }
        Self {
            rt,
            client: Some(client),
            _driver: driver,
            _profile: profile,
            downloads,
            shots,
            count: Cell::new(0),
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    fn run<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, fantoccini::error::CmdError>>,
    ) -> T {
        self.rt
            .block_on(f)
            .unwrap_or_else(|e| panic!("WebDriver: {what}: {e}"))
    }

    /// Runs `test`; when it panics, saves `failure.png` and `failure.txt` first.
    pub fn check(&self, test: impl FnOnce(&Self)) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| test(self))) {
            self.failure_report();
            resume_unwind(panic);
        }
    }

    fn failure_report(&self) {
        let client = self.c().clone();
        let report = self.rt.block_on(async move {
            let png = client.screenshot().await.ok();
            let text = client
                .execute(
                    "const pick = (id) => { const e = document.getElementById(id); return e && !e.hidden ? e.textContent.trim() : ''; };
                     return ['banner-text', 'signin-error', 'form-error', 'confirm-error', 'status', 'value-status']
                       .map((id) => id + ': ' + pick(id)).join('\\n') + '\\n\\nURL: ' + location.href + '\\n\\nbody:\\n' + document.body.innerText;",
                    vec![],
                )
                .await
                .ok();
            (png, text)
        });
        if let Some(png) = report.0 {
            let _ = std::fs::write(self.shots.join("failure.png"), png);
        }
        let text = report
            .1
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "(the page could not be read)".into());
        let _ = std::fs::write(self.shots.join("failure.txt"), &text);
        eprintln!(
            "the page at the failure (screenshot and text in {}):\n{text}",
            self.shots.display()
        );
    }

    /// Saves a screenshot `NN-name.png` in this test's directory; returns its path.
    pub fn shot(&self, name: &str) -> PathBuf {
        let n = self.count.get() + 1;
        self.count.set(n);
        let png = self.run("screenshot", self.c().screenshot());
        let path = self.shots.join(format!("{n:02}-{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Copies a screenshot to `docs/` when `PAT_E2E_DOCS_SCREENSHOTS` is set (the README's).
    pub fn docs_shot(&self, name: &str) {
        let path = self.shot(name);
        if std::env::var_os("PAT_E2E_DOCS_SCREENSHOTS").is_some() {
            let docs = pat_e2e::root().join("docs");
            std::fs::create_dir_all(&docs).expect("docs/");
            std::fs::copy(&path, docs.join(format!("{name}.png"))).expect("copy to docs/");
        }
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.run("goto", self.c().goto(url));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.run("current URL", self.c().current_url()).to_string()
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.run("execute", self.c().execute(script, args))
    }

    /// Polls `check` until it holds, or fails with `what`.
    pub fn wait_until(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn displayed(&self, elements: Vec<Element>) -> Option<Element> {
        elements
            .into_iter()
            .find(|e| self.rt.block_on(e.is_displayed()).unwrap_or(false))
    }

    /// The first displayed element `css`, waiting for it.
    pub fn find(&self, css: &str) -> Element {
        let mut found = None;
        self.wait_until(&format!("a visible `{css}`"), || {
            found = self
                .rt
                .block_on(self.c().find_all(Locator::Css(css)))
                .ok()
                .and_then(|all| self.displayed(all));
            found.is_some()
        });
        found.expect("found")
    }

    /// The visible form control labelled `label` (a `<label for>` with exactly that text).
    pub fn field(&self, label: &str) -> Element {
        let mut found = None;
        self.wait_until(&format!("a visible field labelled {label:?}"), || {
            found = self.field_now(label);
            found.is_some()
        });
        found.expect("found")
    }

    /// Where a user can act now: the open dialog on top (a modal dialog makes the rest of
    /// the page inert), as an XPath prefix; "" when no dialog is open.
    fn scope(&self) -> String {
        let top = self
            .rt
            .block_on(self.c().execute(
                "const open = [...document.querySelectorAll('dialog[open]')]; return open.length ? open[open.length - 1].id : null;",
                vec![],
            ))
            .ok();
        match top.as_ref().and_then(Value::as_str) {
            Some(id) => format!("//dialog[@id={}]", xpath_literal(id)),
            None => String::new(),
        }
    }

    /// The visible control labelled `label`, if there is one now (in the top dialog, when
    /// one is open).
    pub fn field_now(&self, label: &str) -> Option<Element> {
        let xpath = format!(
            "{}//label[normalize-space(.)={}]",
            self.scope(),
            xpath_literal(label)
        );
        let labels = self
            .rt
            .block_on(self.c().find_all(Locator::XPath(&xpath)))
            .ok()?;
        let controls = labels
            .iter()
            .filter_map(|l| self.rt.block_on(l.attr("for")).ok().flatten())
            .filter_map(|id| self.rt.block_on(self.c().find(Locator::Id(&id))).ok())
            .collect();
        self.displayed(controls)
    }

    /// The visible button with exactly the text `text`.
    pub fn button(&self, text: &str) -> Element {
        let mut found = None;
        self.wait_until(&format!("a visible button {text:?}"), || {
            found = self.button_now(text);
            found.is_some()
        });
        found.expect("found")
    }

    /// The visible button `text`, if there is one now (in the top dialog, when one is open).
    pub fn button_now(&self, text: &str) -> Option<Element> {
        let xpath = format!(
            "{}//button[normalize-space(.)={}]",
            self.scope(),
            xpath_literal(text)
        );
        let all = self
            .rt
            .block_on(self.c().find_all(Locator::XPath(&xpath)))
            .ok()?;
        self.displayed(all)
    }

    /// Clicks the visible button `text` once it is enabled.
    pub fn click_button(&self, text: &str) {
        let button = self.button(text);
        self.wait_until(&format!("the button {text:?} enabled"), || {
            self.rt.block_on(button.is_enabled()).unwrap_or(false)
        });
        self.click(&button);
    }

    /// Clicks `element`.
    pub fn click(&self, element: &Element) {
        self.run("click", element.click());
    }

    /// Replaces the value of the field labelled `label` by typing, as a user does: select
    /// all, Backspace, then `text` (every keystroke fires the page's input events).
    pub fn fill(&self, label: &str, text: &str) {
        let field = self.field(label);
        self.click(&field);
        let erase = format!(
            "{}a{}{}",
            char::from(Key::Control),
            char::from(Key::Null),
            char::from(Key::Backspace)
        );
        self.run("erase", field.send_keys(&erase));
        if !text.is_empty() {
            self.run("type", field.send_keys(text));
        }
    }

    /// Chooses the option with the visible text `option` in the `<select>` labelled
    /// `label` (WebDriver clicks the option, as a user does).
    pub fn choose(&self, label: &str, option: &str) {
        let select = self.field(label);
        self.run("choose an option", select.select_by_label(option));
    }

    /// Types `keys` (text or [`Key`]s) into the focused element.
    pub fn keys(&self, keys: &str) {
        let active = self.run("active element", self.c().active_element());
        self.run("send keys", active.send_keys(keys));
    }

    /// Presses `key` (with `modifier` held, if any) on the focused element, as a user would.
    pub fn press(&self, key: Key, modifier: Option<Key>) {
        let mut keys = KeyActions::new("keyboard".into());
        if let Some(m) = modifier {
            keys = keys.then(KeyAction::Down { value: m.into() });
        }
        keys = keys
            .then(KeyAction::Down { value: key.into() })
            .then(KeyAction::Up { value: key.into() });
        if let Some(m) = modifier {
            keys = keys.then(KeyAction::Up { value: m.into() });
        }
        self.run("key actions", self.c().perform_actions(keys));
        self.run("release", self.c().release_actions());
    }

    /// Clicks `element` with `modifier` (Shift, Control) held down: real input events.
    pub fn modifier_click(&self, element: &Element, modifier: Key) {
        let pause = Duration::from_millis(0);
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down {
                value: modifier.into(),
            })
            .pause(pause)
            .pause(pause)
            .pause(pause)
            .then(KeyAction::Up {
                value: modifier.into(),
            });
        let mouse = MouseActions::new("mouse".into())
            .pause(pause)
            .then(PointerAction::MoveToElement {
                element: element.clone(),
                duration: None,
                x: 0.0,
                y: 0.0,
            })
            .then(PointerAction::Down {
                button: fantoccini::actions::MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: fantoccini::actions::MOUSE_BUTTON_LEFT,
            })
            .pause(pause);
        let actions = fantoccini::actions::Actions::from(keys).and(mouse);
        self.run("modifier click", self.c().perform_actions(actions));
        self.run("release", self.c().release_actions());
    }

    /// Moves the mouse over `element`.
    pub fn hover(&self, element: &Element) {
        let mouse = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
            element: element.clone(),
            duration: None,
            x: 0.0,
            y: 0.0,
        });
        self.run("hover", self.c().perform_actions(mouse));
    }

    /// The text of the first displayed `css` (waiting for it).
    pub fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.run("text", e.text())
    }

    /// The text of element `id` now ("" when it is hidden or absent).
    pub fn text_of(&self, id: &str) -> String {
        self.js(
            "const e = document.getElementById(arguments[0]); return e && !e.hidden && e.checkVisibility() ? e.textContent.trim() : '';",
            vec![json!(id)],
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Waits until element `id` shows a text containing `words`; returns the text.
    pub fn wait_text(&self, id: &str, words: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text_of(id);
            if text.contains(words) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for #{id} to say {words:?}; it says {text:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether a dialog `id` is open.
    pub fn dialog_open(&self, id: &str) -> bool {
        self.js(
            "return document.getElementById(arguments[0]).open;",
            vec![json!(id)],
        ) == json!(true)
    }

    /// Waits for dialog `id` to be open (`true`) or closed.
    pub fn wait_dialog(&self, id: &str, open: bool) {
        self.wait_until(
            &format!("the dialog {id} {}", if open { "open" } else { "closed" }),
            || self.dialog_open(id) == open,
        );
    }

    /// The list's rows: `{id, cells: [..7 texts], selected}`.
    pub fn rows(&self) -> Vec<Value> {
        self.js(
            "return [...document.querySelectorAll('#token-rows tr')].map((r) => ({
                id: Number(r.dataset.id),
                cells: [...r.cells].map((c) => c.textContent.trim()),
                selected: r.getAttribute('aria-selected') === 'true',
            }));",
            vec![],
        )
        .as_array()
        .cloned()
        .unwrap_or_default()
    }

    /// The list's row of token `id`.
    pub fn row(&self, id: i64) -> Element {
        self.find(&format!("#token-rows tr[data-id=\"{id}\"]"))
    }

    /// The ids of the selected rows.
    pub fn selected(&self) -> Vec<i64> {
        self.rows()
            .iter()
            .filter(|r| r["selected"] == true)
            .filter_map(|r| r["id"].as_i64())
            .collect()
    }

    /// Waits until the list shows exactly the tokens `ids` (in id order).
    pub fn wait_rows(&self, ids: &[i64]) {
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = self
                .rows()
                .iter()
                .filter_map(|r| r["id"].as_i64())
                .collect::<Vec<_>>();
            if seen == ids {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the rows {ids:?}; the list has {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The id of the focused element ("" when it has none).
    pub fn focused_id(&self) -> String {
        self.js(
            "return document.activeElement ? document.activeElement.id : '';",
            vec![],
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Signs in through the form (Login, Password, Sign in) and waits for the list.
    pub fn sign_in(&self, base: &str, login: &str, password: &str) {
        self.goto(&format!("{base}/tokens/"));
        self.fill("Login", login);
        self.fill("Password", password);
        self.click_button("Sign in");
        self.find("#tokens-view");
        self.button("Generate");
        self.wait_until("the list loaded", || {
            self.js(
                "return document.querySelector('#tool-refresh').getAttribute('aria-busy') === null;",
                vec![],
            ) == json!(true)
        });
    }

    /// Types the password into the confirmation dialog and presses Confirm.
    pub fn confirm(&self, password: &str) {
        self.wait_dialog("confirm-dialog", true);
        self.fill("Password", password);
        self.click_button("Confirm");
    }

    /// The value in the Token dialog (waiting for it).
    pub fn token_value(&self) -> String {
        self.wait_dialog("value-dialog", true);
        let field = self.field("Token");
        self.run("value", field.prop("value")).unwrap_or_default()
    }

    /// Files in the download directory.
    pub fn downloaded(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.downloads.path().join(name)).ok()
    }

    /// Whether no JavaScript alert is open.
    pub fn alert_absent(&self) -> bool {
        self.rt.block_on(self.c().get_alert_text()).is_err()
    }

    /// This test's screenshot directory.
    pub fn shots(&self) -> &Path {
        &self.shots
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), client.close()).await
            });
        }
    }
}

/// `text` as an XPath string literal.
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else {
        format!(
            "concat('{}')",
            text.split('\'').collect::<Vec<_>>().join("', \"'\", '")
        )
    }
}
