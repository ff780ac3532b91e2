//! The agent's API described as OpenAPI 3.1, generated from its wire types and handlers,
//! and served at `GET /openapi.json` (what schemathesis fuzzes the agent with).

use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The agent's API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "plateau agent",
        description = "The probe daemon on each host: samples, probes, a Kafka generator and a Kafka consumer. Every POST needs the agent's bearer token."
    ),
    paths(
        super::status,
        super::metrics,
        super::samples,
        super::run_disk,
        super::net_session,
        super::run_net_tcp,
        super::run_net_udp,
        super::cancel_probe,
        super::check_auth,
        super::kafka::start,
        super::kafka::set_rate,
        super::kafka::close_step,
        super::kafka::stop,
        super::kafka::report,
        super::consume::start,
        super::consume::stop,
        super::consume::report,
        openapi_json,
    ),
    modifiers(&BearerAuth)
)]
pub struct AgentApi;

/// Declares the bearer scheme the mutating operations name.
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "this description")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(AgentApi::openapi())
}
