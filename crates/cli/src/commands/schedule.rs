use std::process::ExitCode;

use backup_app::{Engine, SystemClock};
use backup_domain::ports::Clock;
use backup_domain::timefmt::to_iso_millis;

use super::CliResult;
use crate::args::ScheduleCommand;

pub(crate) async fn run(engine: &Engine, command: ScheduleCommand) -> CliResult {
    let scheduled = &engine.scheduled;
    match command {
        ScheduleCommand::Status { .. } => {
            let schedule = scheduled.schedule().await?;
            let now = SystemClock.now();
            let when = match schedule.frequency {
                backup_domain::Frequency::Daily => format!("daily at {:02}:00", schedule.hour),
                backup_domain::Frequency::Weekly => {
                    const DAYS: [&str; 7] =
                        ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
                    format!("weekly on {} at {:02}:00", DAYS[usize::from(schedule.day_of_week) % 7], schedule.hour)
                }
            };
            say!(
                "Schedule: {} ({when}, {}), keeping the newest {}.",
                if schedule.enabled { "on" } else { "off" },
                scheduled.zone.name(),
                schedule.max_backups
            );
            if let Some(next) = schedule.next_run(now, &scheduled.zone) {
                say!("Next backup: {}", to_iso_millis(next));
            }
            if let Some(last) = schedule.last_backup {
                say!("Last scheduled backup: {}", to_iso_millis(last));
            }
            match scheduled.creator.db.opened_elsewhere().await {
                Some(true) => say!("Framerr is running on this database."),
                Some(false) => say!("Framerr is not running on this database."),
                None => {}
            }
            if scheduled.framerr_scheduler_enabled().await {
                say!(
                    "warning: Framerr's own backup schedule is on too: two schedulers would both back up and prune. Turn it off with `framerr-backup schedule disable-framerr`."
                );
                return Ok(ExitCode::from(3));
            }
        }
        ScheduleCommand::DisableFramerr => {
            if scheduled.disable_framerr_scheduler().await? {
                say!("Framerr's own backup schedule is off from Framerr's next start; this server runs the schedule.");
            } else {
                say!("Framerr's own backup schedule was not on.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
