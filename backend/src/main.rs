//! `entrada`: the command line. Parsing and printing only; every action is
//! one call into the library.

mod cli;

use chrono::Utc;
use clap::Parser;
use cli::{
    AdminCommand, Cli, Command, DeviceCommand, GateCommand, KeyCommand, OperatorCommand,
    OrgCommand, SeedCommand, TicketCommand, TokenCommand, VenueCommand,
};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ENTRADA_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,rusqlite_migration=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let now = Utc::now();
    match cli.command {
        Command::Migrate(db) => cli::admin::migrate(db)?,
        Command::Venue(VenueCommand::Add {
            db,
            orq,
            name,
            timezone,
        }) => cli::admin::venue_add(db, orq, name, timezone, now)?,
        Command::Venue(VenueCommand::List { db, orq }) => cli::admin::venue_list(db, orq)?,
        Command::Venue(VenueCommand::Checkout {
            db,
            orq,
            venue,
            operator,
        }) => cli::admin::venue_checkout(db, orq, venue, operator, now)?,
        Command::Venue(VenueCommand::TakeLeases { db, orq, venue }) => {
            cli::admin::venue_take_leases(db, orq, venue, now)?
        }
        Command::Seed(SeedCommand::Slots {
            db,
            orq,
            venue,
            days,
            capacity,
            from,
        }) => cli::seed::slots(db, orq, venue, days, capacity, from, now)?,
        Command::Serve(args) => cli::serve::serve(args, now)?,
        Command::Token(TokenCommand::Create {
            db,
            orq,
            role,
            user_id,
            venue,
        }) => cli::admin::token_create(db, orq, role, user_id, venue, now)?,
        Command::Admin(AdminCommand::Link {
            db,
            orq,
            operator,
            url,
        }) => cli::admin::console_link(db, orq, operator, url, now)?,
        Command::Token(TokenCommand::Revoke { db, token }) => {
            cli::admin::token_revoke(db, token, now)?
        }
        Command::Operator(OperatorCommand::Add {
            db,
            orq,
            role,
            name,
            pin,
        }) => cli::admin::operator_add(db, orq, role, name, pin, now)?,
        Command::Operator(OperatorCommand::SetPin { db, orq, id, pin }) => {
            cli::admin::operator_set_pin(db, orq, id, pin, now)?
        }
        Command::Org(OrgCommand::Show { db, orq }) => cli::admin::org_show(db, orq)?,
        Command::Org(OrgCommand::Set {
            db,
            orq,
            signed_codes_only,
        }) => cli::admin::org_set(db, orq, signed_codes_only, now)?,
        Command::Ticket(TicketCommand::Qr { db, code, orq, out }) => {
            cli::ticket::qr(db, code, orq, out, now)?
        }
        Command::Ticket(TicketCommand::ExportQr {
            db,
            orq,
            out_dir,
            limit,
            format,
        }) => cli::ticket::export_qr(db, orq, out_dir, limit, format, now)?,
        Command::Ticket(TicketCommand::Code {
            db,
            code,
            orq,
            reissue,
        }) => cli::ticket::code(db, code, orq, reissue, now)?,
        Command::Key(KeyCommand::List { db, orq }) => cli::admin::key_list(db, orq)?,
        Command::Key(KeyCommand::Rotate { db, orq }) => cli::admin::key_rotate(db, orq, now)?,
        Command::Key(KeyCommand::Retire { db, orq, kid }) => {
            cli::admin::key_retire(db, orq, kid, now)?
        }
        Command::Gate(GateCommand::Verify {
            db,
            code,
            orq,
            operator,
            venue,
            direction,
        }) => cli::gate::verify(db, code, orq, operator, venue, direction, now)?,
        Command::Gate(GateCommand::Book {
            db,
            code,
            orq,
            operator,
            venue,
            offline,
            trust,
        }) => cli::gate::book(db, code, orq, operator, venue, offline, trust, now)?,
        Command::Gate(GateCommand::Checkout {
            db,
            operator,
            trust,
        }) => cli::gate::checkout(db, operator, trust)?,
        Command::Gate(GateCommand::Undo {
            db,
            code,
            orq,
            operator,
            reason,
        }) => cli::gate::undo(db, code, orq, operator, reason, now)?,
        Command::Gate(GateCommand::Occupancy { db, orq, venue }) => {
            cli::gate::occupancy(db, orq, venue, now)?
        }
        Command::Device(DeviceCommand::Add {
            db,
            orq,
            venue,
            name,
        }) => cli::admin::device_add(db, orq, venue, name, now)?,
        Command::Device(DeviceCommand::Revoke { db, orq, device_id }) => {
            cli::admin::device_revoke(db, orq, device_id, now)?
        }
        Command::Sync(args) => cli::sync::sync(args)?,
        Command::Update(command) => cli::update::run(command, now)?,
        Command::Launch(args) => cli::update::launch(args)?,
        Command::Device(DeviceCommand::List { db, orq }) => cli::update::device_list(db, orq)?,
        Command::Demo { db, json } => cli::seed::demo(db, json, now)?,
    }
    Ok(())
}
