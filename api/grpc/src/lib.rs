//! The gRPC surface for partner systems: decode, call a core use case, map.
//!
//! # Layout
//! - [`auth`]: the middleware that turns `authorization: Bearer <api key>`
//!   into a [`Caller`](madoguchi_core::auth::Caller), and the one error mapping.
//! - [`organization`], [`events`], [`helpdesk`], [`ticket`], [`chat`]: the services for partner systems;
//!   [`platform`]: provisioning, for whoever runs the platform.
//! - [`pb`]: the generated messages and service traits from `proto/`.
//! - [`routes`]: every service with health and reflection, ready to serve.

pub mod auth;
pub mod chat;
pub mod events;
pub mod helpdesk;
pub mod organization;
pub mod platform;
pub mod ticket;

/// Generated from `proto/madoguchi/v1`.
#[allow(missing_debug_implementations, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("madoguchi.v1");

    /// The encoded descriptor set, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("madoguchi_descriptor");
}

use madoguchi_core::Core;
use tonic::service::Routes;

/// Returns every gRPC service as one router: ours behind API-key
/// authentication, health and reflection open to anyone.
pub async fn routes(core: Core) -> Result<axum::Router, tonic_reflection::server::Error> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::organization_service_server::OrganizationServiceServer<organization::OrganizationApi>>()
        .await;
    health_reporter.set_serving::<pb::event_service_server::EventServiceServer<events::EventApi>>().await;
    health_reporter.set_serving::<pb::platform_service_server::PlatformServiceServer<platform::PlatformApi>>().await;
    health_reporter.set_serving::<pb::helpdesk_service_server::HelpdeskServiceServer<helpdesk::HelpdeskApi>>().await;
    health_reporter.set_serving::<pb::ticket_service_server::TicketServiceServer<ticket::TicketApi>>().await;
    health_reporter.set_serving::<pb::chat_service_server::ChatServiceServer<chat::ChatApi>>().await;
    // Reflection v1, and v1alpha for the tools that speak only it
    // (grpcio-reflection, older grpcurl).
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let router = Routes::new(pb::organization_service_server::OrganizationServiceServer::new(
        organization::OrganizationApi::new(core.clone()),
    ))
    .add_service(pb::event_service_server::EventServiceServer::new(events::EventApi::new(core.clone())))
    .add_service(pb::platform_service_server::PlatformServiceServer::new(platform::PlatformApi::new(core.clone())))
    .add_service(pb::helpdesk_service_server::HelpdeskServiceServer::new(helpdesk::HelpdeskApi::new(core.clone())))
    .add_service(pb::ticket_service_server::TicketServiceServer::new(ticket::TicketApi::new(core.clone())))
    .add_service(pb::chat_service_server::ChatServiceServer::new(chat::ChatApi::new(core.clone())))
    .add_service(health)
    .add_service(reflection_v1)
    .add_service(reflection_v1alpha)
    .into_axum_router()
    .layer(axum::middleware::from_fn_with_state(core, auth::authenticate))
    .layer(axum::middleware::from_fn(auth::observe));
    Ok(router)
}
