//! `GET /api/openapi.json`: the OpenAPI 3.1 document, generated from the
//! handlers' annotations and the domain types.

use axum::Json;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
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
        components.add_security_scheme(
            "console_cookie",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::new(super::console::COOKIE),
            )),
        );
    }
}

/// The refusals the shared extractors make, added to every operation that uses
/// them (an annotation's own, more specific description is kept):
/// `Caller`/`Device` (any bearer operation) answer 401 for a missing, unknown or
/// revoked token; `ApiJson` answers 400 (MALFORMED_JSON), 413, 415 and 422
/// (INVALID_BODY); `ApiQuery` answers 400 (INVALID_QUERY). Every error
/// response is the one `ErrorBody`.
struct ExtractorErrors;

/// `(status, description)` pairs an operation gets from its extractors.
pub(super) fn extractor_statuses(op: &Operation) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        out.push((
            "401",
            "UNAUTHORIZED: no token, or an unknown, expired or revoked one",
        ));
    }
    let body_types: Vec<&str> = op
        .request_body
        .iter()
        .flat_map(|b| b.content.keys())
        .map(String::as_str)
        .collect();
    if body_types.contains(&"application/json") {
        out.push(("400", "MALFORMED_JSON: the body is not JSON"));
        out.push(("413", "PAYLOAD_TOO_LARGE"));
        out.push(("415", "UNSUPPORTED_MEDIA_TYPE: send application/json"));
        out.push((
            "422",
            "INVALID_BODY (the JSON does not fit the schema) or INVALID_INPUT (details.field names the field)",
        ));
    } else if !body_types.is_empty() {
        out.push(("400", "BAD_REQUEST: the body is not UTF-8 text"));
        out.push(("413", "PAYLOAD_TOO_LARGE"));
    }
    let has_query = op
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Query);
    if has_query {
        out.push((
            "400",
            "INVALID_QUERY: a query parameter is missing or not of its type",
        ));
    }
    out
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

impl Modify for ExtractorErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                for (status, description) in extractor_statuses(op) {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description));
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Entrada API", description = "Time-slot reservations and gate verification. Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`."),
    modifiers(&BearerAuth, &ExtractorErrors),
    paths(
        super::health,
        slots::create_slot, slots::update_slot, slots::delete_slot, slots::get_slot, slots::list_slots, slots::available,
        tickets::validate, tickets::activate, tickets::status, tickets::own_tickets, tickets::customer_session, tickets::end_customer_session,
        reservations::create, reservations::get, reservations::reschedule, reservations::cancel,
        gate::validate_ticket, gate::verify_ticket, gate::sign_in, gate::scan, gate::signing_keys,
        admin::create_venue, admin::list_venues, admin::get_venue, admin::update_venue, admin::create_tickets, admin::import_tickets, admin::list_tickets,
        admin::create_operator, admin::list_operators, admin::create_token, admin::signed_code,
        admin::org_settings, admin::update_org_settings,
        super::admin_tickets::search_tickets, super::admin_tickets::cancel_ticket, super::admin_tickets::import_checked, super::admin_tickets::export_tickets, super::admin_tickets::ticket_story, super::admin_staff::reset_pin, super::admin_staff::change_operator, super::admin_gates::list_gates, super::admin_gates::revoke_gate, super::admin_staff::reissue_code,
        sync::whoami, sync::changes, sync::events, sync::create_device, sync::conflicts,
        super::venue_ops::occupancy, super::venue_ops::leases, super::venue_ops::walkup, super::venue_ops::gate_checkout, super::venue_ops::checkout, super::venue_ops::take_back_leases, sync::peers,
        super::update::report, super::update::bundle, super::update::list_devices,
        super::console::sign_in_page, super::console::sign_in, super::console::whoami, super::console::sign_out,
        super::admin_slots::month, super::admin_slots::pattern, super::admin_dashboard::stream,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail, crate::domain::VerdictCode))
)]
pub struct ApiDoc;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
