//! Cron schedules as the CronJob controller evaluates them: skiff-api's
//! parser (the one validation uses too), so the API never accepts a schedule
//! the controller cannot run.

pub use skiff_api::validation::cron::Schedule;
