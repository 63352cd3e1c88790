//! `PlatformService`: provisioning organizations with the platform
//! operator's key (see [`crate::auth`]), never with an API key.

use madoguchi_core::Core;
use madoguchi_core::auth::Email;
use madoguchi_core::organizations::{Name, Organization, PortalName};
use madoguchi_core::platform::{PlatformOperator, ProvisionOrganization};
use tonic::{Request, Response, Status};

use crate::auth::{OrStatus, timestamp};
use crate::pb;

/// Serves `madoguchi.v1.PlatformService`.
#[derive(Debug, Clone)]
pub struct PlatformApi {
    core: Core,
}

impl PlatformApi {
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

/// Returns the operator the middleware authenticated.
fn operator<T>(request: &Request<T>) -> Result<PlatformOperator, Status> {
    request
        .extensions()
        .get::<PlatformOperator>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("platform calls need the platform operator key"))
}

#[tonic::async_trait]
impl pb::platform_service_server::PlatformService for PlatformApi {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::CreateOrganizationResponse>, Status> {
        let operator = operator(&request)?;
        let body = request.get_ref();
        let admin_name = if body.admin_name.is_empty() { "Administrator" } else { body.admin_name.as_str() };
        let command = ProvisionOrganization {
            name: Name::parse(&body.name).status()?,
            portal_name: PortalName::parse(&body.portal_name).status()?,
            admin_email: Email::parse(&body.admin_email).status()?,
            admin_name: Name::parse(admin_name).status()?,
        };
        let created = self.core.platform().create_organization(&operator, command).await.status()?;
        Ok(Response::new(pb::CreateOrganizationResponse {
            organization: Some(provisioned(created.organization)),
            admin_id: created.admin_id.to_string(),
            admin_password: created.admin_password.expose().clone(),
        }))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        let operator = operator(&request)?;
        let organizations = self.core.platform().list_organizations(&operator).await.status()?;
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: organizations.into_iter().map(provisioned).collect(),
        }))
    }

    async fn disable_organization(
        &self,
        request: Request<pb::DisableOrganizationRequest>,
    ) -> Result<Response<pb::DisableOrganizationResponse>, Status> {
        let operator = operator(&request)?;
        let portal = PortalName::parse(&request.get_ref().portal_name).status()?;
        let organization = self.core.platform().set_organization_disabled(&operator, &portal, true).await.status()?;
        Ok(Response::new(pb::DisableOrganizationResponse { organization: Some(provisioned(organization)) }))
    }

    async fn enable_organization(
        &self,
        request: Request<pb::EnableOrganizationRequest>,
    ) -> Result<Response<pb::EnableOrganizationResponse>, Status> {
        let operator = operator(&request)?;
        let portal = PortalName::parse(&request.get_ref().portal_name).status()?;
        let organization = self.core.platform().set_organization_disabled(&operator, &portal, false).await.status()?;
        Ok(Response::new(pb::EnableOrganizationResponse { organization: Some(provisioned(organization)) }))
    }
}

fn provisioned(organization: Organization) -> pb::ProvisionedOrganization {
    pb::ProvisionedOrganization {
        id: organization.id.to_string(),
        name: organization.name,
        portal_name: organization.portal_name,
        create_time: Some(timestamp(organization.created_at)),
        disable_time: organization.disabled_at.map(timestamp),
    }
}
