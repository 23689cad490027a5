//! What running a service with its Compose neighbours needs of the engine besides containers:
//! private networks and named volumes (created with slim's owner labels, removed, listed by
//! label for `slim prune`) and a container's health as its healthcheck reports it.

use std::collections::HashMap;

use bollard::{
    models::{HealthStatusEnum, NetworkCreateRequest, VolumeCreateRequest},
    query_parameters::{ListNetworksOptions, ListVolumesOptions, RemoveVolumeOptions},
};

use super::{is_not_found, Engine, EngineError};

/// A container's health, as its healthcheck last found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub status: HealthStatus,
    /// The last check's output, trimmed (empty when there was none).
    pub last_output: String,
}

/// Where a container's healthcheck stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthStatus {
    /// It has no healthcheck.
    None,
    Starting,
    Healthy,
    Unhealthy,
}

impl Engine {
    /// Creates a bridge network `name` carrying `labels`.
    pub async fn create_network(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".into()),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map(|_| ())
            .map_err(|source| EngineError::api("create network", source))
    }

    /// Removes network `name`; already gone is fine.
    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(source) => Err(EngineError::api("remove network", source)),
        }
    }

    /// Creates a local volume `name` carrying `labels`.
    pub async fn create_volume(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            driver: Some("local".into()),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(|source| EngineError::api("create volume", source))
    }

    /// Removes volume `name`; already gone is fine.
    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveVolumeOptions { force: true };
        match self.docker.remove_volume(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(source) => Err(EngineError::api("remove volume", source)),
        }
    }

    /// The container's health.
    pub async fn health(&self, id: &str) -> Result<Health, EngineError> {
        let info = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|source| EngineError::api("inspect container", source))?;
        let health = info.state.and_then(|s| s.health);
        let status = match health.as_ref().and_then(|h| h.status) {
            Some(HealthStatusEnum::STARTING) => HealthStatus::Starting,
            Some(HealthStatusEnum::HEALTHY) => HealthStatus::Healthy,
            Some(HealthStatusEnum::UNHEALTHY) => HealthStatus::Unhealthy,
            _ => HealthStatus::None,
        };
        let last_output = health
            .and_then(|h| h.log)
            .and_then(|log| log.into_iter().last())
            .and_then(|result| result.output)
            .map(|output| output.trim().to_owned())
            .unwrap_or_default();
        Ok(Health {
            status,
            last_output,
        })
    }

    /// Every network carrying `label`: (name, labels).
    pub async fn networks_labelled(
        &self,
        label: &str,
    ) -> Result<Vec<(String, HashMap<String, String>)>, EngineError> {
        let options = ListNetworksOptions {
            filters: Some([("label".to_owned(), vec![label.to_owned()])].into()),
        };
        let list = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|source| EngineError::api("list networks", source))?;
        Ok(list
            .into_iter()
            .filter_map(|n| Some((n.name?, n.labels.unwrap_or_default())))
            .collect())
    }

    /// Every volume carrying `label`: (name, labels).
    pub async fn volumes_labelled(
        &self,
        label: &str,
    ) -> Result<Vec<(String, HashMap<String, String>)>, EngineError> {
        let options = ListVolumesOptions {
            filters: Some([("label".to_owned(), vec![label.to_owned()])].into()),
        };
        let list = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|source| EngineError::api("list volumes", source))?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.name, v.labels))
            .collect())
    }
}
