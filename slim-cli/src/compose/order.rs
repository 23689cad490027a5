//! Which services start before the target, in which order, and what each is waited for:
//! the target's `depends_on`, followed through the dependencies' own, in dependency order
//! (cycles are an error naming them), narrowed by docker-slim's `--dep-*` flags.

use std::collections::{BTreeMap, BTreeSet};

use super::{ComposeError, Condition, Project};

/// Which of the target's neighbours to start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    /// Its `depends_on`, followed (the default).
    #[default]
    DependsOn,
    /// These, with their own dependencies (`--dep-include-compose-svc`).
    Only(Vec<String>),
    /// Its `depends_on` without these (`--dep-exclude-compose-svc`).
    Excluding(Vec<String>),
    /// None (`--dep-exclude-compose-svc-all`).
    Nothing,
}

/// One service to start, and what it is waited for before the next one starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub service: String,
    /// The strongest condition a service started after it asks of it.
    pub wait: Condition,
}

/// The services to start before `target`, in order.
pub fn start_order(
    project: &Project,
    target: &str,
    selection: &Selection,
) -> Result<Vec<Step>, ComposeError> {
    let known = |name: &str| -> Result<(), ComposeError> {
        match project.services.contains_key(name) {
            true => Ok(()),
            false => Err(ComposeError::NoSuchService {
                name: name.to_owned(),
                known: project
                    .services
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    };
    known(target)?;
    let excluded: BTreeSet<&str> = match selection {
        Selection::Excluding(names) => names.iter().map(String::as_str).collect(),
        _ => BTreeSet::new(),
    };
    let roots: Vec<String> = match selection {
        Selection::Nothing => return Ok(Vec::new()),
        Selection::Only(names) => names.clone(),
        _ => vec![target.to_owned()],
    };
    for name in roots
        .iter()
        .map(String::as_str)
        .chain(excluded.iter().copied())
    {
        known(name)?;
    }
    // Depth-first from the roots: post-order is a start order; a service met again on the
    // current path is a cycle.
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    for root in &roots {
        visit(
            project,
            root,
            &excluded,
            &mut Vec::new(),
            &mut done,
            &mut order,
        )?;
    }
    order.retain(|name| name != target);
    let chosen: BTreeSet<&str> = order.iter().map(String::as_str).collect();
    // What each is waited for: the strongest condition asked of it by a chosen service or the
    // target.
    let mut wait: BTreeMap<&str, Condition> = BTreeMap::new();
    for asker in chosen.iter().copied().chain([target]) {
        for dependency in &project.services[asker].depends_on {
            if chosen.contains(dependency.service.as_str()) {
                let entry = wait
                    .entry(dependency.service.as_str())
                    .or_insert(Condition::Started);
                *entry = (*entry).max(dependency.condition);
            }
        }
    }
    Ok(order
        .iter()
        .map(|service| Step {
            service: service.clone(),
            wait: wait
                .get(service.as_str())
                .copied()
                .unwrap_or(Condition::Started),
        })
        .collect())
}

fn visit(
    project: &Project,
    name: &str,
    excluded: &BTreeSet<&str>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
    order: &mut Vec<String>,
) -> Result<(), ComposeError> {
    if let Some(at) = path.iter().position(|p| p == name) {
        let mut cycle = path[at..].to_vec();
        cycle.push(name.to_owned());
        return Err(ComposeError::Cycle { cycle });
    }
    if done.contains(name) {
        return Ok(());
    }
    path.push(name.to_owned());
    for dependency in &project.services[name].depends_on {
        if excluded.contains(dependency.service.as_str()) {
            continue;
        }
        if !project.services.contains_key(&dependency.service) {
            if dependency.required {
                return Err(ComposeError::Invalid {
                    at: format!("services.{name}.depends_on"),
                    why: format!("no service {}", dependency.service),
                });
            }
            continue;
        }
        visit(project, &dependency.service, excluded, path, done, order)?;
    }
    path.pop();
    done.insert(name.to_owned());
    order.push(name.to_owned());
    Ok(())
}
