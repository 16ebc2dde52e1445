//! A real Prometheus (Debian's `prometheus` package) scraping a board's `/metrics` over TLS with
//! the API token, and its query API, for the end-to-end tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{ca_bundle, wait_until};

/// How often the board is scraped; TCG boards answer a scrape in well under this.
const INTERVAL: &str = "2s";

/// One sample of an instant query: its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels, `__name__` included.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// A Prometheus server on 127.0.0.1, killed (by its PID) and its storage removed on drop.
pub struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `https://127.0.0.1:<api_port>/metrics` with `token`,
    /// trusting the tests' cluster CAs; waits until its own API answers.
    pub fn scraping(api_port: u16, token: &str) -> Prometheus {
        Prometheus::scraping_all(&[api_port], token)
    }

    /// The same for several boards, one target each.
    pub fn scraping_all(api_ports: &[u16], token: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), ca_bundle()).expect("ca.pem");
        std::fs::write(dir.path().join("token"), token).expect("token");
        let config = format!(
            "global:\n  scrape_interval: {INTERVAL}\n  scrape_timeout: {INTERVAL}\n\
             scrape_configs:\n  - job_name: baton\n    scheme: https\n\
             \x20   authorization:\n      credentials_file: {token}\n\
             \x20   tls_config:\n      ca_file: {ca}\n\
             \x20   static_configs:\n      - targets: [{targets}]\n",
            targets = api_ports
                .iter()
                .map(|p| format!("'127.0.0.1:{p}'"))
                .collect::<Vec<_>>()
                .join(", "),
            token = dir.path().join("token").display(),
            ca = dir.path().join("ca.pem").display(),
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("config");
        let port = baton_qemu::free_ports(1).expect("a free port");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian's prometheus package; scripts/setup installs it)");
        let server = Prometheus { child, port, dir };
        wait_until("Prometheus to answer", Duration::from_secs(60), || {
            server.get("/-/ready").filter(|b| b.contains("Ready"))
        });
        server
    }

    /// The log Prometheus wrote so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The samples of the instant query `promql`; `None` when the query failed.
    pub fn query(&self, promql: &str) -> Option<Vec<Sample>> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let text = ureq::get(&url)
            .query("query", promql)
            .call()
            .ok()?
            .into_body()
            .read_to_string()
            .ok()?;
        parse_vector(&text)
    }

    /// The one value `promql` has, once it has exactly one sample.
    pub fn value(&self, promql: &str) -> Option<f64> {
        match self.query(promql)?.as_slice() {
            [one] => Some(one.value),
            _ => None,
        }
    }

    fn get(&self, path: &str) -> Option<String> {
        crate::http_request(self.port, path).map(|(_, body)| body)
    }

    /// Where its files are (its configuration, storage and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The samples of a `vector` answer of the query API.
fn parse_vector(text: &str) -> Option<Vec<Sample>> {
    let answer: serde_json::Value = serde_json::from_str(text).ok()?;
    if answer["status"] != "success" || answer["data"]["resultType"] != "vector" {
        return None;
    }
    answer["data"]["result"]
        .as_array()?
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()?
                .iter()
                .map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect::<Option<BTreeMap<_, _>>>()?;
            let value = r["value"][1].as_str()?.parse().ok()?;
            Some(Sample { labels, value })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_answer_is_read_and_anything_else_is_not() {
        let answer = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","job":"baton"},"value":[1733390000.1,"1"]}]}}"#;
        let samples = parse_vector(answer).expect("a vector");
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].labels["job"], "baton");
        assert_eq!(samples[0].value, 1.0);
        assert_eq!(parse_vector(r#"{"status":"error","error":"bad"}"#), None);
        assert_eq!(
            parse_vector(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#),
            None
        );
    }
}
