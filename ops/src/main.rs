//! puente-ops: parses the command line, calls the library, prints. The AWS endpoint, region and
//! credentials come from the standard SDK environment (`AWS_ENDPOINT_URL` for local runs).

use anyhow::{Context, bail};
use puente_ops::{
    CustomerQuery, DeadLetters, FailureQuery, ReconcileOptions, RedriveOptions, Release, Target,
};
use std::io::Write;

const HELP: &str = "\
puente-ops: operate puente's flows

USAGE:
    puente-ops dlq list     [--stack NAME] [--flow FLOW] [--max N]
    puente-ops dlq show     MESSAGE_ID [--stack NAME] [--flow FLOW] [--max N]
    puente-ops dlq redrive  [--stack NAME] [--flow FLOW] [--max N] [--rate PER_SECOND] [--dry-run]
    puente-ops dlq <command> --help
    puente-ops failures     [--stack NAME] [--flow FLOW] [--max N] [--all]
    puente-ops failures --help
    puente-ops customers    [--stack NAME] [--max N]
    puente-ops customers release CRM_ID [--stack NAME] [--dry-run]
    puente-ops customers --help
    puente-ops reconcile    [--stack NAME] [--flow FLOW] [--full] [--dry-run] [--max-pages N]
    puente-ops reports      [--stack NAME] [--max N]
    puente-ops reconcile --help

COMMON OPTIONS:
    --stack NAME   the deployed stack (default: puente)
    --flow FLOW    the flow (default: customer); its queues are {stack}-{flow} and {stack}-{flow}-dlq
                   and its ledger keys IDEM#{flow}#... in {stack}-state

The AWS endpoint, region and credentials come from the standard SDK environment
(AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE, ...).
";

const HELP_LIST: &str = "\
puente-ops dlq list [--stack NAME] [--flow FLOW] [--max N]

One line per dead letter: message id, flow, error class, receive count and the first line of the
reason. Never prints the body (it may hold personal data); use `dlq show` for one message.
Messages that exhausted maxReceiveCount came through the redrive policy and have no class.

Reads with visibility timeout 0, so nothing is hidden from other consumers. SQS samples a subset
of its servers on each receive, so on AWS the list may be partial; run it again to see more.

    --max N    list at most N messages (default: 100)
";

const HELP_SHOW: &str = "\
puente-ops dlq show MESSAGE_ID [--stack NAME] [--flow FLOW] [--max N]

Prints the attributes and the body of one dead letter (the body may hold personal data). Looks
for it by receiving with visibility timeout 0, through at most N messages (default: 1000); SQS
sampling means a message that exists may not be found on one try.
";

const HELP_REDRIVE: &str = "\
puente-ops dlq redrive [--stack NAME] [--flow FLOW] [--max N] [--rate PER_SECOND] [--dry-run]

Moves dead letters back to the flow's queue, once the cause is fixed. For each message: receive
(hidden for 30 s plus the time the rate needs for its batch), send to {stack}-{flow} with the same body and its original attributes minus the
puente failure attributes (puente-flow, puente-error-class, puente-reason, puente-fields,
puente-source-message-id, puente-receive-count), then delete it from the DLQ. A message is never
deleted before its send succeeded; a crash in between duplicates it, which is safe because the
workers are idempotent by business key. Prints how many moved and failed.

    --max N              stop after N messages (default: 100)
    --rate PER_SECOND    at most this many messages per second (default: 10)
    --dry-run            count what would move; send and delete nothing
";

const HELP_FAILURES: &str = "\
puente-ops failures [--stack NAME] [--flow FLOW] [--max N] [--all]

Lists the flow's business keys that need a person or are struggling, from the idempotency ledger
in {stack}-state: keys that FAILED (rejected for good; fix the cause, then redrive their dead
letters), keys that received a different payload under the same key (conflicts, never applied),
and keys retried more than once that have not completed. One line per key: key
({flow}#{source}#{object_id}#{occurred_at_ms}), status, error class, failed step, attempts, first
and last failure in UTC, conflicts, and the first line of the last error. Newest trouble first
(last failure or last conflict). The ledger holds ids and reasons only, never record data.

Reads with a filtered Scan, which reads the whole table (every flow's items) until N keys are
found: on a large table it costs read capacity. When N is reached the list holds the first N
found, not necessarily the newest. Ledger items expire with the table's retention (TTL).

    --max N    list at most N keys (default: 100)
    --all      also list keys that completed after more than one attempt
";

const HELP_CUSTOMERS: &str = "\
puente-ops customers [--stack NAME] [--max N]
puente-ops customers release CRM_ID [--stack NAME] [--dry-run]

A quarantined customer is not synced in either direction until a person releases it. The
customer flow quarantines a customer when
  - the circuit breaker trips: more writes to one customer within the window than allowed
    (PUENTE_BREAKER_MAX_WRITES within PUENTE_BREAKER_WINDOW_MINUTES), e.g. a loop or a bulk edit;
  - the customer was deleted in one system (nothing is deleted in the other);
  - a CRM merge made two ERP customers match one company.

`customers` lists, from {stack}-state, the quarantined customers, one line each: CRM id, ERP id,
when it was quarantined (UTC) and why, newest first. Then the notices recorded for people
(conflict: a field edited in both systems; deleted; merged), one line each: when (UTC), kind,
record ({system}#{id}) and detail, newest first. Neither holds record data. Reads with filtered
Scans, which read the whole table until N rows are found: when N is reached the list holds the
first N found, not necessarily the newest. Notices expire after 180 days (TTL).

`customers release CRM_ID` resumes syncing the customer linked to the HubSpot company CRM_ID:
clears its quarantine and restarts the breaker's window, then puts one change event per side on
{stack}-customer, so each side's current state is synced once under the ownership rules. Fix
the cause first: a storm that goes on trips the breaker again, and a side whose counterpart was
deleted fails with its reason in the DLQ (see dlq list). Refuses, changing nothing, a customer
that is not quarantined (or not linked).

    --max N      list at most N quarantined customers and N notices (default: 100)
    --dry-run    release: show the customer and the events it would queue; change nothing
";

const HELP_RECONCILE: &str = "\
puente-ops reconcile [--stack NAME] [--flow FLOW] [--full] [--dry-run] [--max-pages N]
puente-ops reports   [--stack NAME] [--max N]

`reconcile` runs the reconciler now, here, as its schedule runs it in Lambda: for each flow
(default: all; `customer`, `invoice`, `product`, and `ledger` for stuck ledger items on --full
runs) it reads each system's records written since its watermark (minus the overlap), compares
each with its counterpart (customers through the links and the ownership rules; won deals with
their documents by reference, and the payment status they show with their invoices'), and puts
a repair event on the flow's queue ({stack}-customer, {stack}-invoicing, {stack}-payments) for
each difference, so the flow's own worker makes every write. Products (Odoo's catalogue, the
system of record) are written to HubSpot's product library by the reconciler itself. With
--full it also sweeps every record (continuing an
unfinished sweep from its checkpoint). It moves the same watermarks and saves its report like a
scheduled run. Shows progress on stderr, then the report as a table.

The connectors' settings come from the variables the function reads (HUBSPOT_BASE_URL,
HUBSPOT_*_PROPERTY, ODOO_URL, ODOO_DB, ODOO_USERNAME, ODOO_AUTH, PUENTE_CUSTOMER_FIELD_OWNERS,
PUENTE_WON_STAGES, ...); the connector secret defaults to {stack}/connectors, the table to {stack}-state.

    --flow FLOW      only this flow
    --full           also sweep every record
    --dry-run        report what differs and what would be enqueued or written; change
                     nothing, move no watermark, save no report
    --max-pages N    stop after reading N pages (default: until done)

`reports` prints the latest saved drift reports (newest first, default 5): per pass the pages
and records read and whether it completed, the differences by flow and class, the repairs
enqueued and a sample of differences (record ids and field names, never values).
";

#[derive(Debug)]
enum Command {
    Help(&'static str),
    List { max: usize },
    Show { message_id: String, max: usize },
    Redrive(RedriveOptions),
    Failures(FailureQuery),
    Customers(CustomerQuery),
    Release(Release),
    Reconcile(ReconcileOptions),
    Reports { max: usize },
}

fn parse(args: &[String]) -> anyhow::Result<(Target, Command)> {
    let mut target = Target::default();
    let mut flow = None;
    let mut positional = Vec::new();
    let mut max = None;
    let mut rate = None;
    let mut dry_run = false;
    let mut all = false;
    let mut full = false;
    let mut max_pages = None;
    let mut help = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| {
            rest.next()
                .cloned()
                .with_context(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "-h" | "--help" | "help" => help = true,
            "--stack" => target.stack = value("--stack")?,
            "--flow" => flow = Some(value("--flow")?),
            "--max" => {
                max = Some(
                    value("--max")?
                        .parse::<usize>()
                        .context("--max must be a whole number")?,
                )
            }
            "--rate" => {
                rate = Some(
                    value("--rate")?
                        .parse::<f64>()
                        .context("--rate must be a number")?,
                )
            }
            "--dry-run" => dry_run = true,
            "--all" => all = true,
            "--full" => full = true,
            "--max-pages" => {
                max_pages = Some(
                    value("--max-pages")?
                        .parse::<usize>()
                        .context("--max-pages must be a whole number")?,
                )
            }
            flag if flag.starts_with("--") => bail!("unknown option {flag}; see --help"),
            word => positional.push(word.to_owned()),
        }
    }
    let words: Vec<&str> = positional.iter().map(String::as_str).collect();
    let command = match (words.as_slice(), help) {
        ([] | ["dlq"], _) => Command::Help(HELP),
        (["dlq", "list", ..], true) => Command::Help(HELP_LIST),
        (["dlq", "show", ..], true) => Command::Help(HELP_SHOW),
        (["dlq", "redrive", ..], true) => Command::Help(HELP_REDRIVE),
        (["failures", ..], true) => Command::Help(HELP_FAILURES),
        (["customers", ..], true) => Command::Help(HELP_CUSTOMERS),
        (["reconcile" | "reports", ..], true) => Command::Help(HELP_RECONCILE),
        (_, true) => Command::Help(HELP),
        (["dlq", "list"], false) => Command::List {
            max: max.unwrap_or(100),
        },
        (["dlq", "show", id], false) => Command::Show {
            message_id: (*id).to_owned(),
            max: max.unwrap_or(1000),
        },
        (["dlq", "show"], false) => bail!("dlq show needs a MESSAGE_ID; see dlq show --help"),
        (["dlq", "redrive"], false) => {
            let defaults = RedriveOptions::default();
            Command::Redrive(RedriveOptions {
                max: max.unwrap_or(defaults.max),
                rate: rate.unwrap_or(defaults.rate),
                dry_run,
            })
        }
        (["failures"], false) => Command::Failures(FailureQuery {
            max: max.unwrap_or(FailureQuery::default().max),
            all,
        }),
        (["customers"], false) => Command::Customers(CustomerQuery {
            max: max.unwrap_or(CustomerQuery::default().max),
        }),
        (["customers", "release", crm_id], false) => {
            if !crm_id.chars().all(|c| c.is_ascii_alphanumeric()) {
                bail!("{crm_id:?} is not a HubSpot company id");
            }
            Command::Release(Release {
                crm_id: (*crm_id).to_owned(),
                dry_run,
            })
        }
        (["customers", "release"], false) => {
            bail!("customers release needs a CRM_ID; see customers --help")
        }
        (["reconcile"], false) => Command::Reconcile(ReconcileOptions {
            flows: flow.iter().cloned().collect(),
            full,
            dry_run,
            max_pages,
        }),
        (["reports"], false) => Command::Reports {
            max: max.unwrap_or(5),
        },
        (other, false) => bail!("unknown command {:?}; see --help", other.join(" ")),
    };
    // The customers commands act on the customer flow only, and each takes its own options.
    let refused = match &command {
        Command::Customers(_) => [
            (flow.is_some(), "--flow"),
            (rate.is_some(), "--rate"),
            (dry_run, "--dry-run"),
        ],
        Command::Release(_) => [
            (flow.is_some(), "--flow"),
            (rate.is_some(), "--rate"),
            (max.is_some(), "--max"),
        ],
        _ => [(false, ""); 3],
    };
    if let Some((_, option)) = refused.iter().find(|(given, _)| *given) {
        bail!("{option} is not an option of this customers command; see customers --help");
    }
    if let Some(flow) = flow {
        target.flow = flow;
    }
    if all && !matches!(command, Command::Failures(_) | Command::Help(_)) {
        bail!("--all is an option of failures only; see --help");
    }
    if (full || max_pages.is_some()) && !matches!(command, Command::Reconcile(_) | Command::Help(_))
    {
        bail!("--full and --max-pages are options of reconcile only; see reconcile --help");
    }
    if !target
        .flow
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("--flow {:?} is not a flow name", target.flow);
    }
    Ok((target, command))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (target, command) = parse(&args)?;
    let mut out = std::io::stdout().lock();
    if let Command::Help(text) = command {
        write!(out, "{text}")?;
        return Ok(());
    }
    let sdk = shared::aws::sdk_config(&shared::config::Env::from_process()).await?;
    if let Command::Failures(query) = command {
        let records = puente_ops::failures(&sdk, &target, query).await?;
        let scope = if query.all {
            "failed, conflicted or retried"
        } else {
            "failed, conflicted or retried and not completed"
        };
        writeln!(
            out,
            "ledger keys of flow {} in {} ({scope}), newest trouble first:",
            target.flow,
            target.state_table(),
        )?;
        for record in &records {
            writeln!(out, "{record}")?;
        }
        let limit = if records.len() >= query.max {
            format!(" (stopped at --max {}; there may be more)", query.max)
        } else {
            String::new()
        };
        writeln!(out, "{} key(s){limit}", records.len())?;
        return Ok(());
    }
    if let Command::Customers(query) = command {
        let found = puente_ops::customers(&sdk, &target, query).await?;
        let limit = |rows: usize| {
            if rows >= query.max {
                format!(" (stopped at --max {}; there may be more)", query.max)
            } else {
                String::new()
            }
        };
        let table = target.state_table();
        if found.quarantined.is_empty() {
            writeln!(out, "no customer is quarantined in {table}")?;
        } else {
            writeln!(out, "quarantined customers in {table}, newest first:")?;
            for customer in &found.quarantined {
                writeln!(out, "{customer}")?;
            }
            writeln!(
                out,
                "{} customer(s) quarantined{}; release one with: puente-ops customers release \
                 CRM_ID --stack {}",
                found.quarantined.len(),
                limit(found.quarantined.len()),
                target.stack,
            )?;
        }
        writeln!(out)?;
        if found.notices.is_empty() {
            writeln!(out, "no notices about customers in {table}")?;
        } else {
            writeln!(out, "notices about customers in {table}, newest first:")?;
            for notice in &found.notices {
                writeln!(out, "{notice}")?;
            }
            writeln!(
                out,
                "{} notice(s){}",
                found.notices.len(),
                limit(found.notices.len())
            )?;
        }
        return Ok(());
    }
    if let Command::Reconcile(options) = &command {
        let env = shared::config::Env::from_process();
        let report = puente_ops::reconcile(&sdk, env, &target, options, &show_progress).await?;
        write!(out, "{}", report.table())?;
        return Ok(());
    }
    if let Command::Reports { max } = command {
        let reports = puente_ops::reports(&sdk, &target, max).await?;
        if reports.is_empty() {
            writeln!(out, "no drift reports in {}-state", target.stack)?;
        }
        for report in &reports {
            writeln!(out, "{}", report.table())?;
        }
        return Ok(());
    }
    if let Command::Release(release) = &command {
        let released = puente_ops::release(&sdk, &target, release).await?;
        writeln!(out, "{released}")?;
        return Ok(());
    }
    let dead_letters = DeadLetters::connect(&sdk, &target).await?;
    match command {
        Command::Help(_)
        | Command::Failures(_)
        | Command::Customers(_)
        | Command::Release(_)
        | Command::Reconcile(_)
        | Command::Reports { .. } => {}
        Command::List { max } => {
            let listed = dead_letters.list(max).await?;
            for letter in &listed {
                writeln!(out, "{letter}")?;
            }
            writeln!(
                out,
                "{} message(s) in {} (SQS samples; the list may be partial)",
                listed.len(),
                target.dlq_name()
            )?;
        }
        Command::Show { message_id, max } => match dead_letters.show(&message_id, max).await? {
            Some(letter) => writeln!(out, "{letter}")?,
            None => bail!(
                "message {message_id} not found in {} (looked at up to {max}; try again, SQS samples)",
                target.dlq_name()
            ),
        },
        Command::Redrive(options) => {
            let summary = dead_letters.redrive(options).await?;
            writeln!(out, "{summary}")?;
            if summary.failed > 0 {
                bail!("{} message(s) could not be moved", summary.failed);
            }
        }
    }
    Ok(())
}

/// Progress on stderr: on a terminal one line per pass, rewritten at every page (which pass, a
/// bar of its pages, the records read so far); elsewhere the line once the pass is over.
fn show_progress(pass: &shared::flows::reconcile::report::Pass, over: bool) {
    use std::io::IsTerminal;
    let bar: String = "#".repeat((pass.pages as usize).min(40));
    let state = match (&pass.error, pass.complete, over) {
        (Some(_), _, _) => " stopped",
        (None, true, _) => " done",
        (None, false, true) => " continues next run",
        (None, false, false) => "",
    };
    let line = format!(
        "{:<9} {:<8} {:<12} [{bar:<40}] {:>5} pages {:>7} records{state}",
        pass.flow, pass.system, pass.pass, pass.pages, pass.records
    );
    match (std::io::stderr().is_terminal(), over) {
        (true, false) => eprint!("\r{line}"),
        (true, true) => eprintln!("\r{line}"),
        (false, true) => eprintln!("{line}"),
        (false, false) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn defaults_are_the_puente_stack_and_the_customer_flow() {
        let (target, command) = parse(&args("dlq list")).expect("parses");
        assert_eq!(target, Target::default());
        assert!(matches!(command, Command::List { max: 100 }));
    }

    #[test]
    fn redrive_takes_max_rate_and_dry_run_in_any_order() {
        let (target, command) = parse(&args(
            "dlq redrive --dry-run --rate 2.5 --stack prod --max 7",
        ))
        .expect("parses");
        assert_eq!(target.stack, "prod");
        match command {
            Command::Redrive(o) => assert_eq!((o.max, o.rate, o.dry_run), (7, 2.5, true)),
            other => panic!("expected redrive, got {other:?}"),
        }
    }

    #[test]
    fn failures_take_stack_flow_max_and_all() {
        let (target, command) = parse(&args("failures")).expect("parses");
        assert_eq!(target, Target::default());
        assert!(matches!(
            command,
            Command::Failures(FailureQuery {
                max: 100,
                all: false
            })
        ));
        let (target, command) =
            parse(&args("failures --all --flow invoice --max 5 --stack prod")).expect("parses");
        assert_eq!(
            (target.stack.as_str(), target.flow.as_str()),
            ("prod", "invoice")
        );
        assert!(matches!(
            command,
            Command::Failures(FailureQuery { max: 5, all: true })
        ));
    }

    #[test]
    fn customers_take_stack_and_max_and_release_takes_a_crm_id_and_dry_run() {
        let (target, command) = parse(&args("customers")).expect("parses");
        assert_eq!(target, Target::default());
        assert!(matches!(
            command,
            Command::Customers(CustomerQuery { max: 100 })
        ));
        let (target, command) = parse(&args("customers --max 5 --stack prod")).expect("parses");
        assert_eq!(target.stack, "prod");
        assert!(matches!(
            command,
            Command::Customers(CustomerQuery { max: 5 })
        ));

        let (target, command) =
            parse(&args("customers release 901 --dry-run --stack prod")).expect("parses");
        assert_eq!(target.stack, "prod");
        match command {
            Command::Release(release) => assert_eq!(
                release,
                Release {
                    crm_id: "901".into(),
                    dry_run: true
                }
            ),
            other => panic!("expected release, got {other:?}"),
        }
        match parse(&args("customers release 901")).expect("parses") {
            (_, Command::Release(release)) => assert!(!release.dry_run),
            (_, other) => panic!("expected release, got {other:?}"),
        }
    }

    #[test]
    fn each_command_has_its_own_help() {
        for (line, text) in [
            ("--help", HELP),
            ("dlq list --help", HELP_LIST),
            ("dlq show -h", HELP_SHOW),
            ("dlq redrive --help", HELP_REDRIVE),
            ("failures --help", HELP_FAILURES),
            ("customers --help", HELP_CUSTOMERS),
            ("customers release --help", HELP_CUSTOMERS),
            ("customers release 901 -h", HELP_CUSTOMERS),
        ] {
            match parse(&args(line)).expect("parses") {
                (_, Command::Help(help)) => assert_eq!(help, text, "{line}"),
                (_, other) => panic!("{line}: expected help, got {other:?}"),
            }
        }
    }

    #[test]
    fn mistakes_are_refused_with_a_message() {
        for line in [
            "dlq show",
            "dlq frob",
            "dlq list --max many",
            "dlq list --stack",
            "dlq list --bogus",
            "dlq list --flow ../x",
            "dlq list --all",
            "failures --max -1",
            "failures extra",
            "customers release",
            "customers release 901 902",
            "customers release 9#01",
            "customers release 901 --max 3",
            "customers release 901 --flow invoice",
            "customers --dry-run",
            "customers --flow invoice",
            "customers --all",
            "customers --rate 2",
            "customers frob",
        ] {
            assert!(parse(&args(line)).is_err(), "{line}");
        }
    }
}
