//! Passwords come from a no-echo prompt or one line of standard input,
//! never from the command line (where `ps` and shell history would see them).

use std::io::{BufRead, IsTerminal};

use backup_domain::Password;
use zeroize::Zeroizing;

pub(crate) fn read(from_stdin: bool, prompt: &str, confirm: bool) -> Result<Password, String> {
    if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
        let text = line.strip_suffix('\n').unwrap_or(&line);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.is_empty() {
            return Err("no password on standard input".into());
        }
        return Ok(Password::new(text));
    }
    if !std::io::stdin().is_terminal() {
        return Err("a password is needed: run on a terminal, or pass --password-stdin".into());
    }
    let first =
        Password::new(rpassword::prompt_password(prompt).map_err(|e| format!("cannot read the password: {e}"))?);
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("Again: ").map_err(|e| format!("cannot read the password: {e}"))?,
        );
        if *again != first.expose() {
            return Err("the passwords do not match".into());
        }
    }
    Ok(first)
}
