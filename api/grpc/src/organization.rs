//! `OrganizationService`: the organization and its departments.

use madoguchi_core::Core;
use madoguchi_core::ids::DepartmentId;
use madoguchi_core::organizations::{Department, Name, Organization};
use tonic::{Request, Response, Status};

use crate::auth::{OrStatus, caller, timestamp};
use crate::pb;

/// Serves `madoguchi.v1.OrganizationService`.
#[derive(Debug, Clone)]
pub struct OrganizationApi {
    core: Core,
}

impl OrganizationApi {
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

#[tonic::async_trait]
impl pb::organization_service_server::OrganizationService for OrganizationApi {
    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::GetOrganizationResponse>, Status> {
        let caller = caller(&request)?;
        let organization = self.core.organizations().get(&caller).await.status()?;
        Ok(Response::new(pb::GetOrganizationResponse { organization: Some(organization.into()) }))
    }

    async fn list_departments(
        &self,
        request: Request<pb::ListDepartmentsRequest>,
    ) -> Result<Response<pb::ListDepartmentsResponse>, Status> {
        let caller = caller(&request)?;
        let departments = self.core.organizations().departments(&caller).await.status()?;
        Ok(Response::new(pb::ListDepartmentsResponse {
            departments: departments.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_department(
        &self,
        request: Request<pb::GetDepartmentRequest>,
    ) -> Result<Response<pb::GetDepartmentResponse>, Status> {
        let caller = caller(&request)?;
        let id = DepartmentId::parse(&request.get_ref().department_id).status()?;
        let department = self.core.organizations().department(&caller, id).await.status()?;
        Ok(Response::new(pb::GetDepartmentResponse { department: Some(department.into()) }))
    }

    async fn create_department(
        &self,
        request: Request<pb::CreateDepartmentRequest>,
    ) -> Result<Response<pb::CreateDepartmentResponse>, Status> {
        let caller = caller(&request)?;
        let name = Name::parse(&request.get_ref().name).status()?;
        let department = self.core.organizations().create_department(&caller, name).await.status()?;
        Ok(Response::new(pb::CreateDepartmentResponse { department: Some(department.into()) }))
    }

    async fn rename_department(
        &self,
        request: Request<pb::RenameDepartmentRequest>,
    ) -> Result<Response<pb::RenameDepartmentResponse>, Status> {
        let caller = caller(&request)?;
        let id = DepartmentId::parse(&request.get_ref().department_id).status()?;
        let name = Name::parse(&request.get_ref().name).status()?;
        let department = self.core.organizations().rename_department(&caller, id, name).await.status()?;
        Ok(Response::new(pb::RenameDepartmentResponse { department: Some(department.into()) }))
    }

    async fn delete_department(
        &self,
        request: Request<pb::DeleteDepartmentRequest>,
    ) -> Result<Response<pb::DeleteDepartmentResponse>, Status> {
        let caller = caller(&request)?;
        let id = DepartmentId::parse(&request.get_ref().department_id).status()?;
        self.core.organizations().delete_department(&caller, id).await.status()?;
        Ok(Response::new(pb::DeleteDepartmentResponse {}))
    }
}

impl From<Organization> for pb::Organization {
    fn from(value: Organization) -> Self {
        Self {
            id: value.id.to_string(),
            name: value.name,
            portal_name: value.portal_name,
            create_time: Some(timestamp(value.created_at)),
        }
    }
}

impl From<Department> for pb::Department {
    fn from(value: Department) -> Self {
        Self { id: value.id.to_string(), name: value.name, create_time: Some(timestamp(value.created_at)) }
    }
}
