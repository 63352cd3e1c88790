//! The command line: `serve` (the default), `migrate`, `export-schema`, and
//! API-key management for operators.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use madoguchi_core::auth::{Caller, Email, Scopes};
use madoguchi_core::clock::SystemClock;
use madoguchi_core::ids::ApiKeyId;
use madoguchi_core::organizations::{Name, PortalName};
use madoguchi_core::platform::{PlatformOperator, ProvisionOrganization};

use crate::application::{Application, open_core};
use crate::settings::Settings;
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(name = "madoguchi", version, about = "Headless customer-support messaging platform")]
struct Cli {
    /// A TOML settings file (default: ./madoguchi.toml if present).
    #[arg(long, global = true, env = "MADOGUCHI_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the server (the default).
    Serve,
    /// Brings the database schema up to date and exits.
    Migrate,
    /// Prints the GraphQL schema (SDL), as committed in schema.graphql.
    ExportSchema,
    /// Manages partner systems' API keys.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Provisions organizations (portals), for whoever runs the platform.
    #[command(subcommand)]
    Organization(OrganizationCommand),
}

#[derive(Debug, Subcommand)]
enum OrganizationCommand {
    /// Creates an organization and its first admin; prints the admin's
    /// password once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        portal: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long, default_value = "Administrator")]
        admin_name: String,
    },
    /// Lists every organization.
    List,
    /// Disables an organization: its webhooks, sessions and keys stop
    /// working; its data stays.
    Disable {
        #[arg(long)]
        portal: String,
    },
    /// Enables a disabled organization again.
    Enable {
        #[arg(long)]
        portal: String,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Creates a key and prints it once.
    Create {
        #[arg(long)]
        portal: String,
        #[arg(long)]
        name: String,
        /// Repeat for several: organization:read, organization:write, chats:read,
        /// chats:write, tickets:read, tickets:write, events:read.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// Lists a portal's keys (never their secrets).
    List {
        #[arg(long)]
        portal: String,
    },
    /// Revokes a key.
    Revoke {
        #[arg(long)]
        portal: String,
        #[arg(long)]
        id: String,
    },
}

/// Runs the command line and returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every command that opens the core builds an HTTP client (for LINE and
    // WeChat), which needs the process's TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::ExportSchema) = cli.command {
        print!("{}", madoguchi_graphql::schema::sdl());
        return Ok(());
    }
    let settings = Settings::load(cli.config.as_deref()).context("invalid settings")?;
    let telemetry = telemetry::init(
        &settings.log_format,
        &settings.log_level,
        settings.otlp_endpoint.as_deref().filter(|_| matches!(cli.command, None | Some(Command::Serve))),
    );
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let application = Application::build(settings, Arc::new(SystemClock)).await?;
            let served = application.run_until_stopped(shutdown_signal()).await;
            telemetry.shutdown();
            served
        }
        Command::Migrate => {
            open_core(&settings, Arc::new(SystemClock)).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::ExportSchema => unreachable!("handled before loading settings"),
        Command::Organization(command) => {
            let core = open_core(&settings, Arc::new(SystemClock)).await?;
            organization(&core, command).await
        }
        Command::ApiKey(command) => {
            let core = open_core(&settings, Arc::new(SystemClock)).await?;
            match command {
                ApiKeyCommand::Create { portal, name, scopes } => {
                    let caller = operator(&core, &portal).await?;
                    let created = core.api_keys().create(&caller, Name::parse(&name)?, Scopes::parse(&scopes)?).await?;
                    println!("id:     {}", created.api_key.id);
                    println!("key:    {}", created.secret.expose());
                    println!("(the key is shown once; store it now)");
                }
                ApiKeyCommand::List { portal } => {
                    let caller = operator(&core, &portal).await?;
                    for key in core.api_keys().list(&caller).await? {
                        let scopes: Vec<_> = key.scopes.iter().map(|scope| scope.as_str()).collect();
                        let state = if key.revoked_at.is_some() { "revoked" } else { "active" };
                        println!("{}  {}  mdg_{}_…  {}  [{}]", key.id, state, key.prefix, key.name, scopes.join(" "));
                    }
                }
                ApiKeyCommand::Revoke { portal, id } => {
                    let caller = operator(&core, &portal).await?;
                    core.api_keys().revoke(&caller, ApiKeyId::parse(&id)?).await?;
                    println!("revoked {id}");
                }
            }
            Ok(())
        }
    }
}

#[allow(clippy::print_stdout)]
async fn organization(core: &madoguchi_core::Core, command: OrganizationCommand) -> anyhow::Result<()> {
    let platform = core.platform();
    let operator = PlatformOperator::at_the_command_line();
    match command {
        OrganizationCommand::Create { name, portal, admin_email, admin_name } => {
            let command = ProvisionOrganization {
                name: Name::parse(&name)?,
                portal_name: PortalName::parse(&portal)?,
                admin_email: Email::parse(&admin_email)?,
                admin_name: Name::parse(&admin_name)?,
            };
            let created = platform.create_organization(&operator, command).await?;
            println!("organization: {}", created.organization.id);
            println!("portal:       {}", created.organization.portal_name);
            println!("admin:        {}", created.admin_email);
            println!("password:     {}", created.admin_password.expose());
            println!("(the password is shown once; the admin should change it after signing in)");
        }
        OrganizationCommand::List => {
            for organization in platform.list_organizations(&operator).await? {
                let state = if organization.disabled_at.is_some() { "disabled" } else { "active" };
                println!("{}  {:<8}  {}  {}", organization.id, state, organization.portal_name, organization.name);
            }
        }
        OrganizationCommand::Disable { portal } => {
            platform.set_organization_disabled(&operator, &PortalName::parse(&portal)?, true).await?;
            println!("disabled {portal}");
        }
        OrganizationCommand::Enable { portal } => {
            platform.set_organization_disabled(&operator, &PortalName::parse(&portal)?, false).await?;
            println!("enabled {portal}");
        }
    }
    Ok(())
}

/// Returns the operator's caller for a portal.
async fn operator(core: &madoguchi_core::Core, portal: &str) -> madoguchi_core::Result<Caller> {
    let organization = core.organizations().find_by_portal(&PortalName::parse(portal)?).await?;
    Ok(Caller::Operator { organization_id: organization.id })
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
