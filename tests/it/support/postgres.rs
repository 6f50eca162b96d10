//! A private PostgreSQL server a test can stop and start again (the store losing its
//! database mid-run). Uses the server binaries `scripts/with-postgres` found or installed
//! (`DRBOT_TEST_PG_BIN`); as root, the server runs as the `postgres` user, as it must.

use std::path::PathBuf;
use std::process::Command;

pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

/// The password of the `postgres` user on a TLS-only server ([`PrivatePostgres::start_tls_only`]).
pub const TLS_PASSWORD: &str = "s3cret-Pg-pass";

/// Runs `openssl` with `args` in `dir`, failing the test with its output.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority made for a test: `<name>.key`, `<name>.pem` in `dir`.
pub fn make_ca(dir: &std::path::Path, name: &str) -> PathBuf {
    let key = format!("{name}.key");
    let pem = format!("{name}.pem");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &key,
            "-out",
            &pem,
        ],
    );
    dir.join(pem)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PrivatePostgres {
    /// None when the suite was not started through `scripts/with-postgres`.
    pub fn binaries() -> Option<PathBuf> {
        std::env::var("DRBOT_TEST_PG_BIN").ok().map(PathBuf::from)
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        let out = cmd.args(args).output().expect("run a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A folder for a server and a free port (not started).
    fn prepare() -> Self {
        let bin = Self::binaries().expect("DRBOT_TEST_PG_BIN: run the tests with scripts/test");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self { bin, dir, port }
    }

    /// As root, the server's files belong to `postgres`.
    fn hand_to_postgres(&self) {
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(self.dir.path())
                .status()
                .unwrap();
        }
    }

    pub fn start() -> Self {
        let server = Self::prepare();
        server.hand_to_postgres();
        let data = server.data();
        server.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "-A", "trust", "-E", "UTF8"],
        );
        server.start_again();
        server
    }

    /// A server that accepts only TLS connections with a password (scram-sha-256), as RDS
    /// for PostgreSQL does with `rds.force_ssl = 1`: a plain connection is rejected. Its
    /// certificate is issued by `ca` for the name `localhost` only (no IP address), so
    /// `verify-full` holds for `localhost` and fails for `127.0.0.1`.
    pub fn start_tls_only(ca_dir: &std::path::Path, ca: &str) -> Self {
        let server = Self::prepare();
        let path = server.dir.path();
        std::fs::write(path.join("pw"), TLS_PASSWORD).unwrap();
        std::fs::write(
            path.join("san.cnf"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(
            path,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        let ca_pem = ca_dir.join(format!("{ca}.pem")).display().to_string();
        let ca_key = ca_dir.join(format!("{ca}.key")).display().to_string();
        openssl(
            path,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                &ca_pem,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.cnf",
                "-out",
                "server.pem",
            ],
        );
        server.hand_to_postgres();
        std::fs::set_permissions(
            path.join("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let data = server.data();
        let pwfile = path.join("pw").display().to_string();
        server.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                &pwfile,
                "-E",
                "UTF8",
            ],
        );
        std::fs::write(
            path.join("data/pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 0.0.0.0/0 reject\n",
        )
        .unwrap();
        let conf = format!(
            "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\npassword_encryption = scram-sha-256\n",
            path.join("server.pem").display(),
            path.join("server.key").display()
        );
        let mut existing = std::fs::read_to_string(path.join("data/postgresql.conf")).unwrap();
        existing.push_str(&conf);
        std::fs::write(path.join("data/postgresql.conf"), existing).unwrap();
        server.start_again();
        server
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (connections are cut).
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }

    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        let _ = cmd.args(["-D", &data, "-m", "immediate", "stop"]).output();
    }
}
