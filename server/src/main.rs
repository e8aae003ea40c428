//! `amanat`: the command-line tool of Amanat: the demo, the sync relay (`serve`) and HQ operations
//! on the organisation's keys (`org init`, `device enroll`, `device revoke`).

use amanat_server::relay::RelayConfig;
use amanat_server::{backup, console, hq, org, serve};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

mod demo;
mod demo_sync;
mod device;

/// Amanat: encrypted, offline-first interview records for anti-trafficking field work.
#[derive(Parser)]
#[command(name = "amanat", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk through the vault on the embedded default (no external service) and print a summary.
    Demo {
        /// Keep the demo's files here (a previous demo vault in it is wiped first). Default: a
        /// temporary directory removed at the end.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run the sync relay: stores and forwards device ciphertext (see docs/PROTOCOL.md).
    Serve {
        /// Data directory: the SQLite database and blob directory live here.
        #[arg(long)]
        data: PathBuf,
        /// The organisation's public configuration (`org.pub` from `amanat org init`).
        #[arg(long)]
        org_public: PathBuf,
        /// Address to listen on (port 0 picks a free port, printed on stdout).
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Use PostgreSQL (postgres://user@host:port/db) instead of the embedded SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        /// Per-device sustained requests per second.
        #[arg(long, default_value_t = 50.0)]
        rate_limit: f64,
        /// Per-device burst of requests.
        #[arg(long, default_value_t = 100.0)]
        rate_burst: f64,
        /// Largest envelope payload in bytes.
        #[arg(long, default_value_t = 256 * 1024)]
        max_envelope_bytes: usize,
        /// Most envelopes per push.
        #[arg(long, default_value_t = 500)]
        max_batch: usize,
        /// Log level: error, warn, info or debug.
        #[arg(long, default_value = "info")]
        log_level: tracing::Level,
    },
    /// Organisation key management (HQ only).
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// The HQ installation: set up, pull (docs/HQ.md).
    Hq {
        #[command(subcommand)]
        command: HqCommand,
    },
    /// Export what one recipient group may read from an HQ installation: readable interviews,
    /// a CSV summary, decrypted attachments, the signed records and originals, a signed manifest.
    Export {
        /// HQ data directory.
        #[arg(long)]
        data: PathBuf,
        /// The recipient group.
        #[arg(long)]
        group: String,
        /// Output directory (new or empty).
        #[arg(long)]
        out: PathBuf,
        /// Leave out identity questions' answers.
        #[arg(long)]
        deidentified: bool,
        /// Only versions submitted since this date (YYYY-MM-DD, UTC) or time (ms).
        #[arg(long)]
        since: Option<String>,
        /// File whose first line is the passphrase (default: read a line from stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Re-check an export: every signature, hash chain and attachment hash; print a custody
    /// report. Exits non-zero, naming each failed item, if anything fails.
    Verify {
        /// The export directory.
        dir: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// The organisation the export must come from (its org.pub).
        #[arg(long)]
        org_pub: Option<PathBuf>,
    },
    /// Form templates: publish a new version to the devices (signed by the organisation key).
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// Device enrollment codes and revocations (HQ; signed by the organisation key), and `join`
    /// (the device side of enrollment).
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create the organisation signing key and one age identity per recipient group in DIR.
    Init {
        /// Directory to create the organisation in.
        dir: PathBuf,
        /// File whose first line is the passphrase (default: read a line from stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// age scrypt work factor (log2 N); lower only for tests.
        #[arg(long, hide = true)]
        scrypt_log_n: Option<u8>,
    },
    /// Certify an HQ installation's signing key (printed by `hq init`) as the organisation's,
    /// so its exports verify (`hq certify` stores the certificate).
    CertifyHq {
        /// Organisation directory.
        #[arg(long)]
        org: PathBuf,
        /// The installation's signing key (hex).
        #[arg(long)]
        key: String,
        /// File whose first line is the organisation passphrase (default: a line of stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Split the organisation's secret keys into Shamir shares for trustees: any THRESHOLD of
    /// SHARES rebuild them (`org restore`), fewer reveal nothing. One text file per share in OUT.
    Backup {
        /// Organisation directory.
        #[arg(long)]
        org: PathBuf,
        /// Number of shares (2–255).
        #[arg(long)]
        shares: u8,
        /// Shares needed to rebuild (2–SHARES).
        #[arg(long)]
        threshold: u8,
        /// Directory to write `share-<i>-of-<n>.txt` into.
        #[arg(long)]
        out: PathBuf,
        /// File whose first line is the organisation passphrase (default: a line of stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Rebuild the organisation's keys from trustees' share files into a new directory, under a
    /// new passphrase.
    Restore {
        /// Share files (at least the threshold).
        #[arg(required = true)]
        shares: Vec<PathBuf>,
        /// New organisation directory.
        #[arg(long)]
        to: PathBuf,
        /// File whose first line is the new passphrase (default: a line of stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Write one recipient group's identity to FILE under its holder's own passphrase, to hand
    /// it to that holder alone (an operator holding only `research` decrypts nothing else).
    ExportGroup {
        /// The group (caseworkers, legal, research).
        group: String,
        /// Organisation directory.
        #[arg(long)]
        org: PathBuf,
        /// Where to write the identity file (must not exist).
        #[arg(long)]
        to: PathBuf,
        /// File whose first line is the organisation passphrase (default: a line of stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// File whose first line is the holder's passphrase (default: the next line of stdin).
        #[arg(long)]
        to_passphrase_file: Option<PathBuf>,
    },
    /// Give a group a new key (when a holder leaves): devices switch to it for everything new,
    /// HQ keeps the old key to read what was sent before.
    RotateGroup {
        /// The group (caseworkers, legal, law_enforcement, research).
        group: String,
        /// Organisation directory.
        #[arg(long)]
        org: PathBuf,
        /// HQ data directory: adopts the new key and sends the signed order to the devices.
        #[arg(long)]
        data: Option<PathBuf>,
        /// File whose first line is the passphrase (of both; default: a line of stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// age scrypt work factor for the new key file (tests; default age's).
        #[arg(long, hide = true)]
        scrypt_log_n: Option<u8>,
    },
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// Sign FILE (a template JSON) with the organisation key and send it through the relay to
    /// every device this HQ installation has received from (or --device …).
    Publish {
        /// The template's JSON source.
        file: PathBuf,
        /// Organisation directory (signs the order).
        #[arg(long)]
        org: PathBuf,
        /// HQ data directory (sends it).
        #[arg(long)]
        data: PathBuf,
        /// A device to send to (repeat; default: every device known to the installation).
        #[arg(long)]
        device: Vec<String>,
        /// File whose first line is the organisation passphrase (default: a line of stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// File with the HQ installation's passphrase, when it differs.
        #[arg(long)]
        hq_passphrase_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum HqCommand {
    /// Create an HQ installation in DATA (an encrypted vault), enroll it with the relay, and give
    /// it group identities: from the organisation directory (--org, optionally --group …), or
    /// from an HQ code (--code-file, from `device enroll --hq`) and identity files (--identity …,
    /// from `org export-group`).
    Init {
        /// HQ data directory.
        #[arg(long)]
        data: PathBuf,
        /// The relay URL.
        #[arg(long)]
        relay: String,
        /// Organisation directory (signs a fresh HQ code, opens the group identities).
        #[arg(long, conflicts_with_all = ["code_file", "identity"])]
        org: Option<PathBuf>,
        /// With --org: a group whose identity to hold (repeat; default: every group).
        #[arg(long, requires = "org")]
        group: Vec<String>,
        /// An HQ enrollment code (JSON) in a file.
        #[arg(long, required_unless_present = "org")]
        code_file: Option<PathBuf>,
        /// With --code-file: an identity file from `org export-group` (repeat).
        #[arg(long, requires = "code_file")]
        identity: Vec<PathBuf>,
        /// File whose first line is the passphrase (default: read a line from stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Store the organisation's certificate of this installation (from `org certify-hq`).
    Certify {
        /// HQ data directory.
        #[arg(long)]
        data: PathBuf,
        /// The certificate file.
        #[arg(long)]
        certificate: PathBuf,
        /// File whose first line is the passphrase (default: read a line from stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Add group identity files (from `org export-group`) to an installation; each is checked
    /// against the organisation's keys first.
    AddIdentity {
        /// HQ data directory.
        #[arg(long)]
        data: PathBuf,
        /// Identity file (repeat).
        #[arg(long, required = true)]
        identity: Vec<PathBuf>,
        /// File whose first line is the passphrase (default: read a line from stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Send each device a signed receipt for what this installation holds of it (phones purge
    /// acknowledged records after the organisation's retention period).
    Ack {
        /// HQ data directory.
        #[arg(long)]
        data: PathBuf,
        /// File whose first line is the passphrase (default: read a line from stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Refer a case to field devices (a colleague's follow-up) or take it back: orders signed by
    /// the organisation key, sealed to each device; changes then travel both ways between the
    /// devices sharing the case.
    Refer {
        /// The case code.
        #[arg(long)]
        case: String,
        /// Device id to refer the case to (repeatable; `amanat hq devices` lists them).
        #[arg(long)]
        to: Vec<String>,
        /// Device id to take the case back from (repeatable).
        #[arg(long)]
        revoke: Vec<String>,
        /// Organisation directory (signs the orders).
        #[arg(long)]
        org: PathBuf,
        /// HQ data directory (sends them).
        #[arg(long)]
        data: PathBuf,
        /// File whose first line is the passphrase of both (default: read a line from stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// The field devices this installation has received from, and whether a case can be
    /// referred to them yet.
    Devices {
        /// HQ data directory.
        #[arg(long)]
        data: PathBuf,
        /// File whose first line is the passphrase (default: read a line from stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Set how long phones keep records HQ acknowledged (signed by the organisation key, sent to
    /// every device this installation knows).
    Retention {
        /// Days after a receipt arrives (1–3650).
        #[arg(long)]
        days: u64,
        /// Organisation directory (signs the order).
        #[arg(long)]
        org: PathBuf,
        /// HQ data directory (sends it).
        #[arg(long)]
        data: PathBuf,
        /// File whose first line is the passphrase of both (default: read a line from stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// The review console: a web page on loopback for caseworkers and lawyers, unlocked with the
    /// passphrase in the page, decrypting only on this machine (docs/HQ.md).
    Console {
        /// HQ data directory.
        #[arg(long)]
        data: PathBuf,
        /// Address to listen on (loopback; port 0 picks a free port, printed on stdout).
        #[arg(long, default_value = "127.0.0.1:8750")]
        listen: SocketAddr,
        /// Lock (drop the unlocked vault) after this many seconds without a request.
        #[arg(long, default_value_t = 300)]
        idle_secs: u64,
        /// Allow a non-loopback --listen: a TLS proxy on this machine terminates connections.
        #[arg(long)]
        behind_tls_proxy: bool,
    },
    /// Pull what devices sent to HQ: keep every envelope as delivered, decrypt and verify what the
    /// identities held allow, keep the rest encrypted.
    Pull {
        /// HQ data directory.
        #[arg(long)]
        data: PathBuf,
        /// File whose first line is the passphrase (default: read a line from stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Print a one-time, expiring, org-signed enrollment code (JSON).
    Enroll {
        /// Organisation directory.
        #[arg(long)]
        org: PathBuf,
        /// File whose first line is the passphrase (default: read a line from stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// Seconds until the code expires.
        #[arg(long, default_value_t = 24 * 3600)]
        expires_in: u64,
        /// Enroll an HQ installation (pulls envelopes addressed to `hq`).
        #[arg(long)]
        hq: bool,
        /// The relay the device must enroll with (`https://host[:port]`), signed into the code so
        /// the device needs nothing else and cannot be pointed at another relay.
        #[arg(long)]
        relay: Option<String>,
        /// Do not draw the code as a QR code (drawn on standard error otherwise).
        #[arg(long)]
        no_qr: bool,
    },
    /// Enroll this machine's vault as a device (the device side; a phone uses the app instead).
    /// The passcode comes from AMANAT_PASSCODE or the first line of stdin, the code from
    /// --code-file or the next line of stdin.
    Join {
        /// The device's vault directory (created if it holds no vault).
        #[arg(long)]
        vault: PathBuf,
        /// The software key provider's key file (default: `<vault>.device-key`).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// File holding the enrollment code (default: read from stdin).
        #[arg(long)]
        code_file: Option<PathBuf>,
        /// Relay URL, for a code issued without --relay (must match when the code has one).
        #[arg(long)]
        relay: Option<String>,
    },
    /// Print an org-signed revocation of DEVICE_ID (JSON, to POST to /v1/revocations).
    Revoke {
        /// Organisation directory.
        #[arg(long)]
        org: PathBuf,
        /// File whose first line is the passphrase (default: read a line from stdin).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// The device to revoke.
        device_id: String,
    },
}

/// clap enforces `--org` or `--code-file` for `hq init`; kept total without a panic.
fn unreachable_args() -> ! {
    eprintln!("amanat: hq init needs --org or --code-file");
    std::process::exit(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { data_dir } => demo::run(data_dir),
        Command::Serve {
            data,
            org_public,
            listen,
            database_url,
            rate_limit,
            rate_burst,
            max_envelope_bytes,
            max_batch,
            log_level,
        } => serve::run(serve::ServeOptions {
            data,
            org_public,
            listen,
            database_url,
            config: RelayConfig {
                rate_per_sec: rate_limit,
                rate_burst,
                max_envelope_bytes,
                max_batch_envelopes: max_batch,
                ..RelayConfig::default()
            },
            log_level,
        })
        .map_err(Into::into),
        Command::Org {
            command:
                OrgCommand::Init {
                    dir,
                    passphrase_file,
                    scrypt_log_n,
                },
        } => org::run_init(dir, passphrase_file, scrypt_log_n).map_err(Into::into),
        Command::Org {
            command:
                OrgCommand::ExportGroup {
                    group,
                    org: dir,
                    to,
                    passphrase_file,
                    to_passphrase_file,
                },
        } => org::run_export_group(dir, group, to, passphrase_file, to_passphrase_file)
            .map_err(Into::into),
        Command::Org {
            command:
                OrgCommand::RotateGroup {
                    group,
                    org: dir,
                    data,
                    passphrase_file,
                    scrypt_log_n,
                },
        } => hq::run_rotate_group(group, dir, data, passphrase_file, scrypt_log_n)
            .map_err(Into::into),
        Command::Org {
            command:
                OrgCommand::Backup {
                    org: dir,
                    shares,
                    threshold,
                    out,
                    passphrase_file,
                },
        } => backup::run_backup(dir, shares, threshold, out, passphrase_file).map_err(Into::into),
        Command::Org {
            command:
                OrgCommand::Restore {
                    shares,
                    to,
                    passphrase_file,
                },
        } => backup::run_restore(shares, to, passphrase_file).map_err(Into::into),
        Command::Org {
            command:
                OrgCommand::CertifyHq {
                    org: dir,
                    key,
                    passphrase_file,
                },
        } => org::run_certify_hq(dir, key, passphrase_file).map_err(Into::into),
        Command::Export {
            data,
            group,
            out,
            deidentified,
            since,
            passphrase_file,
        } => hq::run_export(data, group, out, deidentified, since, passphrase_file)
            .map_err(Into::into),
        Command::Template {
            command:
                TemplateCommand::Publish {
                    file,
                    org,
                    data,
                    device,
                    passphrase_file,
                    hq_passphrase_file,
                },
        } => hq::run_publish_template(file, org, data, device, passphrase_file, hq_passphrase_file)
            .map_err(Into::into),
        Command::Verify { dir, json, org_pub } => {
            hq::run_verify(dir, json, org_pub).map_err(Into::into)
        }
        Command::Hq { command } => match command {
            HqCommand::Init {
                data,
                relay,
                org,
                group,
                code_file,
                identity,
                passphrase_file,
            } => {
                let keys = match (org, code_file) {
                    (Some(dir), _) => hq::Keys::Org { dir, groups: group },
                    (None, Some(code_file)) => hq::Keys::Files {
                        code_file,
                        identities: identity,
                    },
                    (None, None) => unreachable_args(),
                };
                hq::run_init(data, relay, keys, passphrase_file).map_err(Into::into)
            }
            HqCommand::Certify {
                data,
                certificate,
                passphrase_file,
            } => hq::run_certify(data, certificate, passphrase_file).map_err(Into::into),
            HqCommand::AddIdentity {
                data,
                identity,
                passphrase_file,
            } => hq::run_add_identities(data, identity, passphrase_file).map_err(Into::into),
            HqCommand::Pull {
                data,
                passphrase_file,
            } => hq::run_pull(data, passphrase_file).map_err(Into::into),
            HqCommand::Console {
                data,
                listen,
                idle_secs,
                behind_tls_proxy,
            } => console::run(console::Options {
                data,
                listen,
                idle: std::time::Duration::from_secs(idle_secs.max(1)),
                behind_tls_proxy,
            })
            .map_err(Into::into),
            HqCommand::Ack {
                data,
                passphrase_file,
            } => hq::run_ack(data, passphrase_file).map_err(Into::into),
            HqCommand::Retention {
                days,
                org,
                data,
                passphrase_file,
            } => hq::run_retention(days, org, data, passphrase_file).map_err(Into::into),
            HqCommand::Refer {
                case,
                to,
                revoke,
                org,
                data,
                passphrase_file,
            } => hq::run_refer(case, to, revoke, org, data, passphrase_file).map_err(Into::into),
            HqCommand::Devices {
                data,
                passphrase_file,
            } => hq::run_devices(data, passphrase_file).map_err(Into::into),
        },
        Command::Device { command } => match command {
            DeviceCommand::Enroll {
                org: dir,
                passphrase_file,
                expires_in,
                hq,
                relay,
                no_qr,
            } => org::run_enroll(dir, passphrase_file, expires_in, hq, relay, !no_qr)
                .map_err(Into::into),
            DeviceCommand::Join {
                vault,
                key_file,
                code_file,
                relay,
            } => device::run_join(device::JoinOptions {
                vault,
                key_file,
                code_file,
                relay,
            })
            .map_err(Into::into),
            DeviceCommand::Revoke {
                org: dir,
                passphrase_file,
                device_id,
            } => org::run_revoke(dir, passphrase_file, device_id).map_err(Into::into),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("amanat: {e}");
            ExitCode::FAILURE
        }
    }
}
