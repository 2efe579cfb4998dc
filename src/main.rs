//! `dr-drill`: thin entry point. Parses arguments, calls the library, maps the outcome to an exit code:
//! 0 all passed, 1 the system under test failed a scenario, 2 the harness or its input broke.

use clap::Parser;

fn main() {
    let cli = match dr_drill::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    std::process::exit(dr_drill::commands::main(cli));
}
