//! pgrepctl: parse, run, map the outcome to an exit code — nothing else
//! (all of which lives in `run`).

fn main() -> std::process::ExitCode {
    pgrepctl::run::main()
}
