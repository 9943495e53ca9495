//! The audit log endpoint: every change, newest first, for Admins.

use super::step::{Answer, Step};
use crate::admin::membership::Standing;
use crate::admin::permission::{check, Action, Target};
use crate::admin::query::Query;
use crate::error::ApiError;

pub fn list(step: &Step) -> Result<Answer, ApiError> {
    check(step.caller, Action::AuditRead, Standing::default(), Target::Org)?;
    let query = Query::parse(step.query, &["limit", "cursor"])?;
    Ok(Answer::list(step.store.list_audit(query.page()?)?))
}
