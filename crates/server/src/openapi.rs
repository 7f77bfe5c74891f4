//! `GET /api/openapi.json`: the OpenAPI 3.1 document, generated from the
//! handlers' annotations and the domain types.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, error, gate, reservations, slots, sync, tickets};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Entrada API", description = "Time-slot reservations and gate verification. Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`."),
    modifiers(&BearerAuth),
    paths(
        super::health,
        slots::create_slot, slots::update_slot, slots::delete_slot, slots::get_slot, slots::list_slots, slots::available,
        tickets::validate, tickets::activate, tickets::status, tickets::own_tickets, tickets::customer_session, tickets::end_customer_session,
        reservations::create, reservations::get, reservations::reschedule, reservations::cancel,
        gate::validate_ticket, gate::verify_ticket, gate::sign_in, gate::scan, gate::signing_keys,
        admin::create_venue, admin::list_venues, admin::get_venue, admin::update_venue, admin::create_tickets, admin::import_tickets, admin::list_tickets,
        admin::create_operator, admin::list_operators, admin::create_token, admin::signed_code,
        admin::org_settings, admin::update_org_settings,
        sync::whoami, sync::changes, sync::events, sync::create_device, sync::conflicts,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail, crate::domain::VerdictCode))
)]
pub struct ApiDoc;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
