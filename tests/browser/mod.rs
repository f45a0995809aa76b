//! Headless Chromium, driven through chromedriver (WebDriver), for tests
//! that use the pages as a person would: they open pages, type, click and
//! wait for what the page shows, never for a fixed time.
//!
//! The browser is Debian's `chromium` with `chromium-driver` (`.ci/run`
//! installs them). Without them a test fails in CI (`CI=true`) and, on a
//! developer's machine, says loudly that it was skipped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

/// The longest wait for anything a page does. Generous, since the machine
/// may be busy; a wait ends as soon as its condition holds.
pub const PATIENCE: Duration = Duration::from_secs(30);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);

/// A desktop window; screenshots grow it to the page's height.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;

const INSTALL: &str = "the browser tests need Debian's chromium and chromium-driver: \
     run `apt-get update && apt-get install -y chromium chromium-driver` (.ci/run does)";

/// One headless browser with its driver, stopped when dropped.
pub struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    /// The server's base URL (`http://127.0.0.1:PORT`).
    base: String,
}

/// A program on `PATH`.
fn program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// Where screenshots go, for a person to look at.
pub fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("screenshots"))
        .unwrap_or_else(|| PathBuf::from("screenshots"))
}

/// Starts chromedriver on a free loopback port; returns it and the port.
fn start_driver(driver: &Path) -> (Child, u16) {
    let mut child = Command::new(driver)
        // Port 0: any free one, which it names. It takes local connections only.
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group, so that it and the browser it starts can
        // be stopped together, whatever state a failed test left them in.
        .process_group(0)
        .spawn()
        .expect("start chromedriver");
    let stdout = child.stdout.take().expect("chromedriver's stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut sent = false;
        for line in lines.by_ref().map_while(Result::ok) {
            if !sent && line.contains("started successfully") {
                if let Some(port) = line
                    .split("on port ")
                    .nth(1)
                    .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok())
                {
                    let _ = sender.send(port);
                    sent = true;
                }
            }
        }
    });
    match receiver.recv_timeout(PATIENCE) {
        Ok(port) => (child, port),
        Err(_) => {
            stop_group(&mut child);
            panic!("chromedriver did not say which port it listens on");
        }
    }
}

fn stop_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

impl Browser {
    /// A browser for the server at `base`, with or without JavaScript.
    /// `None` (and a loud message) when the browser is not installed and
    /// this is not CI.
    pub async fn start(base: &str, javascript: bool) -> Option<Browser> {
        let (Some(chromium), Some(driver)) = (program("chromium"), program("chromedriver")) else {
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                panic!("{INSTALL}");
            }
            // Straight to stderr: the test harness would hide `eprintln!` of a passing test.
            let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {INSTALL} ***\n");
            return None;
        };
        let profile = tempfile::tempdir().expect("browser profile dir");
        let (mut driver, port) = start_driver(&driver);
        let mut options = json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--lang=en-US",
                format!("--window-size={WIDTH},{HEIGHT}"),
                format!("--user-data-dir={}", profile.path().display()),
            ],
        });
        if !javascript {
            options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let connect = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match connect {
            Ok(client) => client,
            Err(err) => {
                stop_group(&mut driver);
                panic!("cannot start a browser session: {err}");
            }
        };
        Some(Browser {
            client,
            driver,
            _profile: profile,
            base: base.to_string(),
        })
    }

    /// Ends the session (closing the browser) and stops the driver.
    pub async fn stop(mut self) {
        let _ = self.client.clone().close().await;
        stop_group(&mut self.driver);
    }

    /// Opens a page of the server (`/people`).
    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The path and query of the page shown.
    pub async fn address(&self) -> String {
        let url = self.client.current_url().await.expect("current URL");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits until the address shown satisfies `test`; returns it.
    pub async fn wait_for_address(&self, what: &str, test: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let address = self.address().await;
            if test(&address) {
                return address;
            }
            if started.elapsed() > PATIENCE {
                self.failed(&format!("address never became {what}; it is {address}"))
                    .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for the address `path` exactly.
    pub async fn wait_for_path(&self, path: &str) {
        self.wait_for_address(path, |a| a == path).await;
    }

    /// The first element `css` selects, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(err) => self.failed(&format!("no element {css}: {err}")).await,
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        if let Err(err) = element.click().await {
            self.failed(&format!("cannot click {css}: {err}")).await;
        }
    }

    /// Clicks the link or button whose text is `text`.
    pub async fn click_text(&self, text: &str) {
        let xpath = format!(
            "//*[self::a or self::button or self::summary][normalize-space(.)={}]",
            xpath_literal(text)
        );
        let element = match self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::XPath(&xpath))
            .await
        {
            Ok(element) => element,
            Err(err) => {
                self.failed(&format!("nothing to click named {text:?}: {err}"))
                    .await
            }
        };
        if let Err(err) = element.click().await {
            self.failed(&format!("cannot click {text:?}: {err}")).await;
        }
    }

    /// Replaces the text of a field.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear a field");
        if !text.is_empty() {
            field.send_keys(text).await.expect("type into a field");
        }
    }

    /// The value a field holds.
    pub async fn value(&self, css: &str) -> String {
        let field = self.find(css).await;
        field.prop("value").await.ok().flatten().unwrap_or_default()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_default()
    }

    /// The texts of every element `css` selects.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.find_all(css).await {
            texts.push(element.text().await.unwrap_or_default());
        }
        texts
    }

    /// Waits until an element `css` selects shows text containing `needle`.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(text) = self
                .texts(css)
                .await
                .into_iter()
                .find(|t| t.contains(needle))
            {
                return text;
            }
            if started.elapsed() > PATIENCE {
                let shown = self.texts(css).await;
                self.failed(&format!(
                    "{css} never showed {needle:?}; it shows {shown:?}"
                ))
                .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `css` selects exactly `count` elements.
    pub async fn wait_for_count(&self, css: &str, count: usize) {
        let started = Instant::now();
        loop {
            let found = self.find_all(css).await.len();
            if found == count {
                return;
            }
            if started.elapsed() > PATIENCE {
                self.failed(&format!("{css} selects {found}, not {count}"))
                    .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs a script in the page and returns its value.
    pub async fn script(&self, code: &str) -> Value {
        self.client
            .execute(code, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script {code:?}: {e}"))
    }

    pub async fn set_size(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize the window");
    }

    /// Saves the whole page as `target/screenshots/<name>.png`: the
    /// window grows to the page's height for the picture.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let (width, height) = self.client.get_window_size().await.expect("window size");
        let page_height = self
            .script("return document.documentElement.scrollHeight")
            .await
            .as_u64()
            .unwrap_or(height);
        let tall = page_height.clamp(height, 4000) as u32;
        // The window's frame takes some height: grow by the difference.
        let inner = self
            .script("return window.innerHeight")
            .await
            .as_u64()
            .unwrap_or(height);
        let frame = height.saturating_sub(inner) as u32;
        self.set_size(width as u32, tall + frame).await;
        let png = self.client.screenshot().await.expect("screenshot");
        self.set_size(width as u32, height as u32).await;
        let dir = screenshots();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Fails the test, with a screenshot of what the page showed.
    async fn failed(&self, what: &str) -> ! {
        let address = self.address().await;
        let shot = self.screenshot("failure").await;
        panic!("{what} (page {address}; screenshot {})", shot.display());
    }

    /// The controls of the page that have no label a screen reader could read.
    pub async fn unlabelled(&self) -> Vec<String> {
        let found = self
            .script(
                "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                    .filter((c) => c.labels.length === 0 && !c.getAttribute('aria-label'))
                    .map((c) => c.outerHTML);",
            )
            .await;
        serde_json::from_value(found).unwrap_or_default()
    }

    /// Whether the page is wider than the window (it should scroll only
    /// within its tables).
    pub async fn overflows(&self) -> bool {
        self.script("return document.documentElement.scrollWidth > window.innerWidth")
            .await
            .as_bool()
            .unwrap_or(true)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        stop_group(&mut self.driver);
    }
}

/// An XPath string literal for any text.
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}
