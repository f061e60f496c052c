//! `goneaway contract`: choose the battery's cells, run them a few at a time with a line
//! per finished cell on stderr, then print the table (text, JSON, Markdown).

use super::args::ContractArgs;
use crate::contract::{self, Battery, Options, Outcome};
use crate::error::{EXIT_HARNESS, EXIT_OK, EXIT_UNMET};

/// Exit 0 when every cell passed, 1 when one failed or could not tell, 2 when the
/// battery could not be read or a cell could not run.
pub(super) async fn contract(a: ContractArgs) -> i32 {
    let battery = Battery::builtin().select(&a.clients, &a.configs, &a.faults);
    let battery = battery.and_then(|mut b| {
        for r in &a.recommended {
            b.recommend(r)?;
        }
        // Every cell is checked before any server starts.
        b.cells().map(|_| b)
    });
    let battery = match battery {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_HARNESS;
        }
    };
    let total = battery.configs.len() * battery.faults.len();
    eprintln!(
        "contract: {} configuration(s) × {} fault(s), {} cell(s), {} at a time{}",
        battery.configs.len(),
        battery.faults.len(),
        total,
        a.jobs.max(1),
        if a.resume {
            ", reusing saved cells"
        } else {
            ""
        }
    );
    let opts = Options {
        jobs: a.jobs,
        limit: None,
        seed: a.seed,
        dir: Some(a.dir.clone()),
        resume: a.resume,
        cancel: super::cancel_on_ctrl_c("healing faults and stopping servers"),
    };
    let width = total.to_string().len();
    let mut on_cell = |c: &contract::Cell, reused: bool, done: usize, total: usize| {
        eprintln!(
            "  [{done:>width$}/{total}] {} {} × {}: {}{}",
            c.client,
            c.config,
            c.fault,
            c.outcome.word(),
            if reused { " (saved)" } else { "" }
        );
    };
    let table = match contract::run(&battery, &opts, &mut on_cell).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("goneaway: {e}");
            return EXIT_HARNESS;
        }
    };
    let mut code = if table.cells.iter().any(|c| c.outcome == Outcome::Error) {
        EXIT_HARNESS
    } else if table.kept() {
        EXIT_OK
    } else {
        EXIT_UNMET
    };
    for c in table.cells.iter().filter(|c| c.outcome == Outcome::Error) {
        eprintln!(
            "goneaway: {} {} × {}: {}",
            c.client,
            c.config,
            c.fault,
            c.reasons.join("; ")
        );
    }
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&table).expect("tables serialize")
        );
    } else {
        out!("{}", contract::text(&table));
        outln!("\ncells and reports saved under {}", a.dir.display());
    }
    let md = contract::markdown(&table);
    if let Err(e) = super::write_markdown(a.markdown.as_deref(), |_| md.clone(), || md.clone()) {
        eprintln!("goneaway: {e}");
        code = EXIT_HARNESS;
    }
    code
}
