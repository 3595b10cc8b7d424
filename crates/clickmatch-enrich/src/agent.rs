//! The user agent's device type, OS, browser and bot flag.
//!
//! Parsed by `woothee` (compiled-in rules, no data file to load or keep current, a few
//! microseconds per string), then classed here: woothee's categories say pc, smartphone,
//! mobile phone, crawler, appliance or misc, so tablets and TVs are told apart by the tokens
//! their browsers send. (`ua-parser`, the uap-core port, was the other candidate: it needs the
//! 200 KB `regexes.yaml` loaded and compiled at startup and gives a device family, not a
//! class, so the same rules would be needed on top of it.) Parsing costs more than the rest of
//! a redirect's enrichment, and real traffic repeats a few thousand user agents, so
//! [`Agents`] keeps the latest classes in a bounded cache.

use std::sync::Arc;

use quick_cache::sync::Cache;

/// Device classes, as written to `clicks.device_type`.
pub const DESKTOP: &str = "desktop";
pub const MOBILE: &str = "mobile";
pub const TABLET: &str = "tablet";
pub const TV: &str = "tv";
pub const BOT: &str = "bot";
pub const OTHER: &str = "other";

/// What a user agent says about the client. All empty for an empty user agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agent {
    /// One of [`DESKTOP`], [`MOBILE`], [`TABLET`], [`TV`], [`BOT`], [`OTHER`]. Shared, as the
    /// other names, with every click that gets them from the cache.
    pub device_type: Arc<str>,
    /// `Windows 10`, `Mac OSX`, `iOS`, `Android`, `Linux`…; empty when not recognised.
    pub os: Arc<str>,
    /// `Chrome`, `Safari`, `Firefox`, `Edge`, `Googlebot`…; empty when not recognised.
    pub browser: Arc<str>,
    /// A known crawler or automation tool: flagged, never blocked.
    pub is_bot: bool,
}

/// Tokens of smart TVs, TV sticks and set-top boxes. Checked before phones and tablets: TV
/// browsers often say `Android` or `Linux` too.
const TV_TOKENS: &[&str] = &[
    "SmartTV",
    "SMART-TV",
    "Smart-TV",
    "SmartTv",
    "HbbTV",
    "AppleTV",
    "Apple TV",
    "GoogleTV",
    "Android TV",
    "AndroidTV",
    "CrKey",
    "BRAVIA",
    "Web0S",
    "NetCast",
    "Roku",
    "AFTB",
    "AFTM",
    "AFTS",
    "AFTT",
    "AFTK",
    "InternetTVBrowser",
];

/// Automation tools woothee does not call crawlers.
const BOT_TOKENS: &[&str] = &[
    "HeadlessChrome",
    "PhantomJS",
    "curl/",
    "Wget/",
    "python-requests/",
    "Go-http-client/",
    "libwww-perl/",
];

/// Classes `user_agent` (pure; no cache).
pub fn classify(user_agent: &str) -> Agent {
    let user_agent = user_agent.trim();
    if user_agent.is_empty() {
        return Agent::default();
    }
    let parsed = woothee::parser::Parser::new().parse(user_agent);
    let known = |value: &str| {
        if value == woothee::woothee::VALUE_UNKNOWN {
            Arc::default()
        } else {
            Arc::from(value)
        }
    };
    let (category, os, browser) = match &parsed {
        Some(result) => (result.category, result.os, result.name),
        None => ("", "", ""),
    };
    let is_bot = category == "crawler" || BOT_TOKENS.iter().any(|t| user_agent.contains(t));
    let device_type = if is_bot {
        BOT
    } else if TV_TOKENS.iter().any(|t| user_agent.contains(t)) {
        TV
    } else if is_tablet(user_agent, os) {
        TABLET
    } else {
        match category {
            "pc" => DESKTOP,
            "smartphone" | "mobilephone" => MOBILE,
            _ => OTHER,
        }
    };
    let os = match os {
        // woothee names Apple's mobile OS by the device.
        "iPhone" | "iPad" | "iPod" => Arc::from("iOS"),
        other => known(other),
    };
    Agent {
        device_type: device_type.into(),
        os,
        browser: known(browser),
        is_bot,
    }
}

/// iPads; Android devices whose browser leaves out `Mobile` (Google's rule for tablets);
/// Kindles, PlayBooks and browsers that say `Tablet` (but not Windows' old `Tablet PC`, a
/// desktop).
fn is_tablet(user_agent: &str, os: &str) -> bool {
    os == "iPad"
        || (os == "Android" && !user_agent.contains("Mobile"))
        || user_agent.contains("Kindle")
        || user_agent.contains("Silk/")
        || user_agent.contains("PlayBook")
        || (user_agent.contains("Tablet") && !user_agent.contains("Tablet PC"))
}

/// [`classify`] behind a bounded cache keyed by the whole user-agent string.
pub struct Agents {
    cache: Cache<Box<str>, Arc<Agent>>,
}

impl Agents {
    /// A cache of at most `capacity` user agents (evicting the least useful).
    pub fn new(capacity: usize) -> Agents {
        Agents {
            cache: Cache::new(capacity.max(1)),
        }
    }

    pub fn classify(&self, user_agent: &str) -> Arc<Agent> {
        if let Some(agent) = self.cache.get(user_agent) {
            return agent;
        }
        let agent = Arc::new(classify(user_agent));
        self.cache.insert(user_agent.into(), agent.clone());
        agent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(user_agent: &str) -> (String, String, String, bool) {
        let agent = classify(user_agent);
        (
            agent.device_type.to_string(),
            agent.os.to_string(),
            agent.browser.to_string(),
            agent.is_bot,
        )
    }

    #[test]
    fn desktops() {
        for (ua, os, browser) in [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "Windows 10", "Chrome"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", "Mac OSX", "Safari"),
            ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "Linux", "Firefox"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", "Windows 10", "Edge"),
            ("Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; Tablet PC 2.0; rv:11.0) like Gecko", "Windows 7", "Internet Explorer"),
        ] {
            assert_eq!(class(ua), (DESKTOP.into(), os.into(), browser.into(), false), "{ua}");
        }
    }

    #[test]
    fn phones() {
        for (ua, os, browser) in [
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "iOS", "Safari"),
            ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", "Android", "Chrome"),
            ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", "Android", "SamsungBrowser"),
            ("Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", "Android", "Firefox"),
        ] {
            assert_eq!(class(ua), (MOBILE.into(), os.into(), browser.into(), false), "{ua}");
        }
    }

    #[test]
    fn tablets() {
        for (ua, os) in [
            ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "iOS"),
            ("Mozilla/5.0 (Linux; Android 13; SM-X706B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "Android"),
            ("Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/124.2.1 like Chrome/124.0.6367.82 Safari/537.36", "Android"),
        ] {
            let agent = classify(ua);
            assert_eq!((&*agent.device_type, &*agent.os), (TABLET, os), "{ua}");
            assert!(!agent.is_bot);
        }
    }

    #[test]
    fn tvs() {
        for ua in [
            "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 85.0.4183.93/6.0 TV Safari/537.36",
            "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36 WebAppManager",
            "Mozilla/5.0 (Linux; Android 9; AFTKA Build/PS7633) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            "Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 CrKey/1.56.500000",
        ] {
            let agent = classify(ua);
            assert_eq!(&*agent.device_type, TV, "{ua}");
            assert!(!agent.is_bot, "{ua}");
        }
    }

    #[test]
    fn bots_are_flagged() {
        for (ua, browser) in [
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot"),
            ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.60 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot"),
            ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bingbot"),
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", "misc crawler"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36", "Chrome"),
            ("curl/8.5.0", "HTTP Library"),
        ] {
            let agent = classify(ua);
            assert_eq!((&*agent.device_type, agent.is_bot), (BOT, true), "{ua}");
            assert_eq!(&*agent.browser, browser, "{ua}");
        }
    }

    #[test]
    fn empty_and_unknown_agents() {
        assert_eq!(classify(""), Agent::default());
        assert_eq!(classify("   "), Agent::default());
        let odd = classify("SomethingElse/1.0");
        assert_eq!(&*odd.device_type, OTHER);
        assert_eq!((&*odd.os, &*odd.browser, odd.is_bot), ("", "", false));
    }

    #[test]
    fn the_cache_answers_as_the_parser_does() {
        let agents = Agents::new(2);
        let ua = "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
        let first = agents.classify(ua);
        let again = agents.classify(ua);
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second answer is the cached one"
        );
        assert_eq!(*first, classify(ua));
        // Past its capacity it still answers right.
        for n in 0..10 {
            let other = format!("Mozilla/5.0 (Windows NT 10.0) Chrome/{n}.0 Safari/537.36");
            assert_eq!(*agents.classify(&other), classify(&other));
        }
        assert_eq!(*agents.classify(ua), classify(ua));
    }
}
