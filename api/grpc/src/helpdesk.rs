//! `HelpdeskService`: ZSC keys, the link to a helpdesk portal, its rule and
//! department mapping.

use madoguchi_core::Core;
use madoguchi_core::auth::Email;
use madoguchi_core::helpdesk::{HelpdeskLink, LinkHelpdesk, Mapping};
use madoguchi_core::ids::DepartmentId;
use madoguchi_core::kinds;
use madoguchi_core::organizations::PortalName;
use madoguchi_core::secrets::Secret;
use madoguchi_core::{Error, Result as CoreResult};
use tonic::{Request, Response, Status};

use crate::auth::{OrStatus, caller, timestamp};
use crate::pb;

/// Serves `madoguchi.v1.HelpdeskService`.
#[derive(Debug, Clone)]
pub struct HelpdeskApi {
    core: Core,
}

impl HelpdeskApi {
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

#[tonic::async_trait]
impl pb::helpdesk_service_server::HelpdeskService for HelpdeskApi {
    async fn generate_zsc_key(
        &self,
        request: Request<pb::GenerateZscKeyRequest>,
    ) -> Result<Response<pb::GenerateZscKeyResponse>, Status> {
        let caller = caller(&request)?;
        let generated = self.core.helpdesk().generate_zsc_key(&caller).await.status()?;
        Ok(Response::new(pb::GenerateZscKeyResponse {
            zsc_key: generated.secret.expose().clone(),
            prefix: generated.key.prefix,
        }))
    }

    async fn link_helpdesk(
        &self,
        request: Request<pb::LinkHelpdeskRequest>,
    ) -> Result<Response<pb::LinkHelpdeskResponse>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let command = LinkHelpdesk {
            admin_email: Email::parse(&body.admin_email).status()?,
            portal_name: PortalName::parse(&body.portal_name).status()?,
            zsc_key: (!body.zsc_key.is_empty()).then(|| Secret::new(body.zsc_key.clone())),
        };
        let link = self.core.helpdesk().link(&caller, command).await.status()?;
        Ok(Response::new(pb::LinkHelpdeskResponse { link: Some(link.into()) }))
    }

    async fn get_helpdesk_link(
        &self,
        request: Request<pb::GetHelpdeskLinkRequest>,
    ) -> Result<Response<pb::GetHelpdeskLinkResponse>, Status> {
        let caller = caller(&request)?;
        let link = self.core.helpdesk().get_link(&caller).await.status()?;
        Ok(Response::new(pb::GetHelpdeskLinkResponse { link: Some(link.into()) }))
    }

    async fn set_helpdesk_link_enabled(
        &self,
        request: Request<pb::SetHelpdeskLinkEnabledRequest>,
    ) -> Result<Response<pb::SetHelpdeskLinkEnabledResponse>, Status> {
        let caller = caller(&request)?;
        let link = self.core.helpdesk().set_enabled(&caller, request.get_ref().enabled).await.status()?;
        Ok(Response::new(pb::SetHelpdeskLinkEnabledResponse { link: Some(link.into()) }))
    }

    async fn set_chat_to_ticket_rule(
        &self,
        request: Request<pb::SetChatToTicketRuleRequest>,
    ) -> Result<Response<pb::SetChatToTicketRuleResponse>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let rule = rule_from(body.rule()).status()?;
        let status = status_from(body.ticket_status()).status()?;
        let scope = scope_from(body.recent_tickets()).status()?;
        let link = self.core.helpdesk().set_rule(&caller, rule, status, scope).await.status()?;
        Ok(Response::new(pb::SetChatToTicketRuleResponse { link: Some(link.into()) }))
    }

    async fn set_department_mapping(
        &self,
        request: Request<pb::SetDepartmentMappingRequest>,
    ) -> Result<Response<pb::SetDepartmentMappingResponse>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let department_id = DepartmentId::parse(&body.department_id).status()?;
        let mapping = match body.mode() {
            pb::MappingMode::Department => {
                Mapping::Department(DepartmentId::parse(&body.helpdesk_department_id).status()?)
            }
            pb::MappingMode::None => Mapping::None,
            pb::MappingMode::ViewOnly => Mapping::ViewOnly,
            pb::MappingMode::ChooseAsNeeded => Mapping::ChooseAsNeeded,
            pb::MappingMode::Unspecified => return Err(Status::invalid_argument("mode is required")),
        };
        let link = self.core.helpdesk().set_mapping(&caller, department_id, mapping).await.status()?;
        Ok(Response::new(pb::SetDepartmentMappingResponse { link: Some(link.into()) }))
    }
}

fn rule_from(rule: pb::ChatToTicketRule) -> CoreResult<kinds::ChatToTicketRule> {
    Ok(match rule {
        pb::ChatToTicketRule::AllVisitors => kinds::ChatToTicketRule::AllVisitors,
        pb::ChatToTicketRule::Attended => kinds::ChatToTicketRule::Attended,
        pb::ChatToTicketRule::Missed => kinds::ChatToTicketRule::Missed,
        pb::ChatToTicketRule::None => kinds::ChatToTicketRule::None,
        pb::ChatToTicketRule::Unspecified => return Err(Error::invalid_argument("rule is required")),
    })
}

pub(crate) fn status_from(status: pb::TicketStatus) -> CoreResult<kinds::TicketStatus> {
    Ok(match status {
        pb::TicketStatus::Open => kinds::TicketStatus::Open,
        pb::TicketStatus::OnHold => kinds::TicketStatus::OnHold,
        pb::TicketStatus::Escalated => kinds::TicketStatus::Escalated,
        pb::TicketStatus::Closed => kinds::TicketStatus::Closed,
        pb::TicketStatus::Unspecified => return Err(Error::invalid_argument("ticket_status is required")),
    })
}

pub(crate) fn status_to(status: kinds::TicketStatus) -> pb::TicketStatus {
    match status {
        kinds::TicketStatus::Open => pb::TicketStatus::Open,
        kinds::TicketStatus::OnHold => pb::TicketStatus::OnHold,
        kinds::TicketStatus::Escalated => pb::TicketStatus::Escalated,
        kinds::TicketStatus::Closed => pb::TicketStatus::Closed,
    }
}

fn scope_from(scope: pb::RecentTicketsScope) -> CoreResult<kinds::RecentTicketsScope> {
    Ok(match scope {
        pb::RecentTicketsScope::AllDepartments => kinds::RecentTicketsScope::AllDepartments,
        pb::RecentTicketsScope::MappedOnly => kinds::RecentTicketsScope::MappedOnly,
        pb::RecentTicketsScope::Unspecified => return Err(Error::invalid_argument("recent_tickets is required")),
    })
}

impl From<HelpdeskLink> for pb::HelpdeskLink {
    fn from(link: HelpdeskLink) -> Self {
        let rule = match link.rule {
            kinds::ChatToTicketRule::AllVisitors => pb::ChatToTicketRule::AllVisitors,
            kinds::ChatToTicketRule::Attended => pb::ChatToTicketRule::Attended,
            kinds::ChatToTicketRule::Missed => pb::ChatToTicketRule::Missed,
            kinds::ChatToTicketRule::None => pb::ChatToTicketRule::None,
        };
        let status = status_to(link.ticket_status);
        let scope = match link.recent_tickets {
            kinds::RecentTicketsScope::AllDepartments => pb::RecentTicketsScope::AllDepartments,
            kinds::RecentTicketsScope::MappedOnly => pb::RecentTicketsScope::MappedOnly,
        };
        Self {
            helpdesk_portal_name: link.helpdesk_portal_name,
            helpdesk_organization_name: link.helpdesk_organization_name,
            admin_email: link.admin_email,
            enabled: link.enabled,
            rule: rule.into(),
            ticket_status: status.into(),
            recent_tickets: scope.into(),
            mappings: link
                .mappings
                .into_iter()
                .map(|mapping| pb::DepartmentMapping {
                    department_id: mapping.department_id.to_string(),
                    department_name: mapping.department_name,
                    mode: match mapping.mode {
                        kinds::MappingMode::Department => pb::MappingMode::Department,
                        kinds::MappingMode::None => pb::MappingMode::None,
                        kinds::MappingMode::ViewOnly => pb::MappingMode::ViewOnly,
                        kinds::MappingMode::ChooseAsNeeded => pb::MappingMode::ChooseAsNeeded,
                    }
                    .into(),
                    helpdesk_department_id: mapping.helpdesk_department_id.map(|id| id.to_string()).unwrap_or_default(),
                    helpdesk_department_name: mapping.helpdesk_department_name.unwrap_or_default(),
                })
                .collect(),
            update_time: Some(timestamp(link.updated_at)),
        }
    }
}
