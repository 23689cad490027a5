//! The fat image pulled from its registry when the engine lacks it (`--pull`), and the verified
//! slim image pushed to its own (`--push`), both through the engine with the login the docker
//! CLI keeps. A registry that is down, refuses the login or lacks the image is one line with
//! what to do.

use anyhow::Result;

use crate::{
    commands::{Fault, UsageError},
    engine::{
        registry::{config_path, credentials_for, registry_host, Credentials},
        ContainerEngine, EngineError,
    },
};

use super::Console;

/// The login for `reference`'s registry, if the docker CLI's config has one.
pub(super) fn login_for(reference: &str) -> Option<Credentials> {
    let config = std::fs::read_to_string(config_path()?).ok()?;
    credentials_for(&config, &registry_host(reference))
}

/// Pulls `reference` into the engine.
pub async fn pull<E: ContainerEngine>(engine: &E, reference: &str, console: Console) -> Result<()> {
    let host = registry_host(reference);
    console.say(format!("      pull      {reference} from {host}"));
    engine
        .pull_image(reference, login_for(reference))
        .await
        .map_err(|err| explain(err, "pull", reference, &host))
}

/// Pushes `reference` (a tag in the engine) to its registry.
pub async fn push<E: ContainerEngine>(engine: &E, reference: &str, console: Console) -> Result<()> {
    let host = registry_host(reference);
    engine
        .push_image(reference, login_for(reference))
        .await
        .map_err(|err| explain(err, "push", reference, &host))?;
    console.say(format!("      push      {reference} to {host}"));
    Ok(())
}

/// A registry's refusal as one line and a hint: a name the registry lacks is the user's to fix
/// (usage), a registry down or refusing the login is a fault.
fn explain(err: EngineError, operation: &str, reference: &str, host: &str) -> anyhow::Error {
    let EngineError::Registry {
        status, message, ..
    } = &err
    else {
        return err.into();
    };
    let said = message.trim();
    let lower = said.to_lowercase();
    let unauthorized = *status == Some(401)
        || lower.contains("unauthorized")
        || lower.contains("authentication required")
        || lower.contains("no basic auth credentials");
    let missing = *status == Some(404)
        || lower.contains("manifest unknown")
        || lower.contains("repository does not exist");
    // Docker Hub says the same of a name it does not have and of a private one.
    let maybe_login = lower.contains("access denied") || lower.contains("docker login");
    if unauthorized {
        return Fault::new(
            format!("{host} refused the {operation} of {reference}: {said}"),
            format!(
                "log in first: `docker login {host}` (slim uses the login in \
                 ~/.docker/config.json; credential helpers are not read)"
            ),
        )
        .into();
    }
    if missing && operation == "pull" {
        let hint = match maybe_login {
            true => format!(
                "check the name and tag; a private image needs a login first: `docker login {host}`"
            ),
            false => {
                "check the name and tag (`docker pull NAME` says the same), or build the image"
                    .to_owned()
            }
        };
        return UsageError::new(
            format!("{reference} is not in its registry {host}: {said}"),
            hint,
        )
        .into();
    }
    Fault::new(
        format!("cannot {operation} {reference} ({host}): {said}"),
        format!(
            "is the registry up? (`curl http://{host}/v2/` answers when it is); the engine talks \
             to a registry without TLS only on 127.0.0.1 or when listed in its \
             insecure-registries"
        ),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(status: Option<u16>, message: &str) -> EngineError {
        EngineError::Registry {
            operation: "pull",
            reference: "127.0.0.1:5000/app:1".into(),
            status,
            message: message.into(),
        }
    }

    #[test]
    fn refusals_are_told_apart_with_their_exit_class() {
        let reference = "127.0.0.1:5000/app:1";
        let host = "127.0.0.1:5000";
        let missing = explain(
            registry(Some(404), "manifest unknown"),
            "pull",
            reference,
            host,
        );
        assert!(
            missing.downcast_ref::<UsageError>().is_some(),
            "{missing:#}"
        );
        let denied = explain(
            registry(None, "unauthorized: authentication required"),
            "push",
            reference,
            host,
        );
        let fault = denied.downcast_ref::<Fault>().expect("a fault");
        assert!(
            fault.hint.contains("docker login 127.0.0.1:5000"),
            "{}",
            fault.hint
        );
        let down = explain(
            registry(
                Some(500),
                "Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused",
            ),
            "pull",
            reference,
            host,
        );
        let fault = down.downcast_ref::<Fault>().expect("a fault");
        assert!(
            fault.message.contains("connection refused"),
            "{}",
            fault.message
        );
        assert!(fault.hint.contains("curl http://127.0.0.1:5000/v2/"));
        let hub = explain(
            registry(
                Some(404),
                "pull access denied for nothere, repository does not exist or may require 'docker login'",
            ),
            "pull",
            "nothere:1",
            "docker.io",
        );
        let usage = hub.downcast_ref::<UsageError>().expect("a usage error");
        assert!(
            usage.hint.contains("docker login docker.io"),
            "{}",
            usage.hint
        );
        // Not the registry's: passed on as it is.
        let other = explain(
            EngineError::NotRunning("c1".into()),
            "pull",
            reference,
            host,
        );
        assert!(other.downcast_ref::<EngineError>().is_some());
    }
}
