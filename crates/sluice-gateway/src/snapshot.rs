//! The immutable routing snapshot the data plane reads: routes, keys and
//! subscriptions, and each (API, environment)'s counter cell, endpoint and
//! metric handles, resolved on the API's first request and then kept.
//!
//! A snapshot is rebuilt from the definitions after every change and swapped
//! in atomically (`ArcSwap`); the request path never locks or touches the
//! store. An API whose definition did not change keeps its runtime from the
//! previous snapshot (endpoints, budgets, registered metric series), so a
//! change to one API among 10 000 costs little more than a lookup each.

use crate::route::{LookupMap, LookupSet, RouteTable};
use crate::telemetry::EnvTelemetry;
use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue};
use sluice_core::api_key::KeyDigest;
use sluice_core::{ApiDefinition, EndpointCredential, Environment, KeyType};
use sluice_limits::{Budget, Counters, InFlight};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

/// What a snapshot is built from.
#[derive(Debug, Default, Clone)]
pub struct SnapshotInput {
    /// Published APIs, validated.
    pub apis: Vec<Arc<ApiDefinition>>,
    /// API keys.
    pub keys: Vec<KeyEntry>,
    /// Subscriptions as (application id, API id).
    pub subscriptions: Vec<(String, String)>,
}

/// An API key as the gateway checks it.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// Public key id.
    pub key_id: String,
    /// Owning application.
    pub application_id: String,
    /// PRODUCTION or SANDBOX.
    pub key_type: KeyType,
    /// HMAC digest of the whole key.
    pub digest: KeyDigest,
    /// Epoch milliseconds after which the key is refused; `None` never.
    pub expires_at_ms: Option<u64>,
    /// Revoked keys are refused.
    pub revoked: bool,
}

/// The snapshot.
#[derive(Default)]
pub(crate) struct RoutingSnapshot {
    pub(crate) routes: RouteTable<ApiRuntime>,
    /// Shared between snapshots that differ only in their APIs.
    pub(crate) keys: Arc<LookupMap<String, KeyEntry>>,
}

/// An API ready to serve.
pub(crate) struct ApiRuntime {
    pub(crate) definition: Arc<ApiDefinition>,
    /// Built on the API's first request, so an idle API holds no counter
    /// cells, endpoint targets or metric series; shared by the snapshots
    /// that follow while the definition stays the same.
    environments: Arc<OnceLock<[EnvRuntime; 2]>>,
    /// Applications subscribed to this API.
    pub(crate) subscribers: LookupSet<String>,
    /// The header the API's Sluice key is read from.
    pub(crate) key_header: HeaderName,
}

impl ApiRuntime {
    /// The runtime of `definition`: the previous one's environments when
    /// the definition is unchanged, else new ones (built on first use).
    fn next(
        definition: Arc<ApiDefinition>,
        previous: Option<&ApiRuntime>,
        subscribers: LookupSet<String>,
    ) -> Arc<Self> {
        let (definition, environments) = match previous {
            Some(old) if old.definition == definition => {
                (Arc::clone(&old.definition), Arc::clone(&old.environments))
            }
            _ => (definition, Arc::default()),
        };
        Arc::new(ApiRuntime {
            subscribers,
            key_header: HeaderName::from_bytes(definition.security.api_key_header.as_bytes())
                .unwrap_or(HeaderName::from_static("apikey")),
            environments,
            definition,
        })
    }

    /// Both environments' runtime, built now if this is the first request.
    pub(crate) fn environments(&self, counters: &Counters) -> &[EnvRuntime; 2] {
        self.environments
            .get_or_init(|| environments(&self.definition, counters))
    }

    /// Both environments' runtime, if a request has built it.
    pub(crate) fn built_environments(&self) -> Option<&[EnvRuntime; 2]> {
        self.environments.get()
    }
}

/// One environment of an API.
pub(crate) struct EnvRuntime {
    pub(crate) environment: Environment,
    pub(crate) budget: Budget,
    pub(crate) in_flight: Arc<InFlight>,
    pub(crate) endpoint: Option<EndpointTarget>,
    pub(crate) telemetry: EnvTelemetry,
}

/// A backend endpoint, pre-parsed for building upstream requests.
pub(crate) struct EndpointTarget {
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
    pub(crate) host: HeaderValue,
    /// Path of the endpoint URL without a trailing `/` (`""` for the root).
    pub(crate) base_path: String,
    pub(crate) query: Option<String>,
    pub(crate) credential: Option<(HeaderName, HeaderValue)>,
    /// False when the endpoint opted out of TLS verification.
    pub(crate) tls_verify: bool,
}

impl RoutingSnapshot {
    /// The snapshot of `input`, reusing what `previous` built for APIs whose
    /// definition is unchanged.
    pub(crate) fn build(input: SnapshotInput, counters: &Counters, previous: &Self) -> Self {
        let mut subscribers: HashMap<&str, LookupSet<String>> = HashMap::new();
        for (application, api) in &input.subscriptions {
            subscribers
                .entry(api.as_str())
                .or_default()
                .insert(application.clone());
        }
        let previous_by_id: HashMap<&str, &ApiRuntime> = previous
            .routes
            .values()
            .map(|api| (api.definition.id.as_str(), api.as_ref()))
            .collect();
        let mut routes = RouteTable::default();
        for definition in input.apis {
            let id = definition.id.as_str();
            let previous = previous_by_id.get(id).copied();
            let subscribers = subscribers.remove(id).unwrap_or_default();
            let runtime = ApiRuntime::next(definition, previous, subscribers);
            routes.insert(&runtime.definition.route, Arc::clone(&runtime));
        }
        let live: HashSet<&str> = routes
            .values()
            .map(|api| api.definition.id.as_str())
            .collect();
        counters.retain(|api_id| live.contains(api_id));
        let keys = input
            .keys
            .into_iter()
            .filter(|key| !key.revoked)
            .map(|key| (key.key_id.clone(), key))
            .collect();
        RoutingSnapshot {
            routes,
            keys: Arc::new(keys),
        }
    }

    /// This snapshot with one API replaced, added (`definition` with a new
    /// id) or removed (`None`); keys and subscriptions unchanged.
    pub(crate) fn with_api(
        &self,
        api_id: &str,
        definition: Option<Arc<ApiDefinition>>,
        counters: &Counters,
    ) -> Self {
        let mut routes = self.routes.clone();
        let old = self
            .routes
            .values()
            .find(|api| api.definition.id.as_str() == api_id);
        if let Some(old) = old {
            routes.remove(&old.definition.route);
        }
        match definition {
            Some(definition) => {
                let subscribers = old.map(|old| old.subscribers.clone()).unwrap_or_default();
                let runtime = ApiRuntime::next(definition, old.map(Arc::as_ref), subscribers);
                routes.insert(&runtime.definition.route, Arc::clone(&runtime));
            }
            None => counters.retain(|id| id != api_id),
        }
        RoutingSnapshot {
            routes,
            keys: Arc::clone(&self.keys),
        }
    }
}

/// The runtime of both environments of a new or changed API.
fn environments(definition: &ApiDefinition, counters: &Counters) -> [EnvRuntime; 2] {
    Environment::ALL.map(|environment| {
        let (budget, in_flight) = counters.get(&definition.id, environment);
        EnvRuntime {
            environment,
            budget,
            in_flight,
            endpoint: definition
                .endpoint(environment)
                .and_then(EndpointTarget::new),
            telemetry: EnvTelemetry::new(
                &definition.route,
                &definition.id,
                environment,
                &definition.throughput.limit(environment).caps,
            ),
        }
    })
}

impl EndpointTarget {
    fn new(endpoint: &sluice_core::Endpoint) -> Option<Self> {
        let url = &endpoint.url;
        let scheme = if url.scheme() == "https" {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let host = url.host_str()?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let credential = endpoint.credential.as_ref().and_then(credential_header);
        Some(Self {
            scheme,
            authority: authority.parse().ok()?,
            host: HeaderValue::from_str(&authority).ok()?,
            base_path: url.path().trim_end_matches('/').to_owned(),
            query: url.query().map(str::to_owned),
            credential,
            tls_verify: endpoint.tls_verify,
        })
    }
}

fn credential_header(credential: &EndpointCredential) -> Option<(HeaderName, HeaderValue)> {
    use base64::Engine;
    let (name, value) = match credential {
        EndpointCredential::Header { name, value } => {
            (HeaderName::from_bytes(name.as_bytes()).ok()?, value.clone())
        }
        EndpointCredential::Basic { username, password } => (
            http::header::AUTHORIZATION,
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            ),
        ),
    };
    let mut value = HeaderValue::from_str(&value).ok()?;
    value.set_sensitive(true);
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_limits::LocalCounters;

    fn api(id: &str, context: &str, limit: u64) -> ApiDefinition {
        let definition = json!({
            "name": id, "context": context, "version": "v1",
            "endpointConfig": {"endpoint_type": "http",
                "production_endpoints": {"url": "http://127.0.0.1:9/"}},
            "maxTps": {"production": limit, "productionTimeUnit": "SECOND"},
        });
        ApiDefinition::from_json(id, &definition).unwrap()
    }

    fn input(apis: Vec<ApiDefinition>) -> SnapshotInput {
        SnapshotInput {
            apis: apis.into_iter().map(Arc::new).collect(),
            ..SnapshotInput::default()
        }
    }

    fn runtime<'a>(snapshot: &'a RoutingSnapshot, id: &str) -> &'a ApiRuntime {
        snapshot
            .routes
            .values()
            .find(|api| api.definition.id.as_str() == id)
            .expect("published")
    }

    #[test]
    fn an_unchanged_api_keeps_its_runtime_and_a_changed_one_gets_a_new_one() {
        let counters = Counters::Local(LocalCounters::new());
        let first = RoutingSnapshot::build(
            input(vec![api("a", "/a", 10), api("b", "/b", 10)]),
            &counters,
            &RoutingSnapshot::default(),
        );
        runtime(&first, "a").environments(&counters)[0]
            .telemetry
            .series();

        let second = RoutingSnapshot::build(
            input(vec![api("a", "/a", 10), api("b", "/b", 20)]),
            &counters,
            &first,
        );

        let (a1, a2) = (runtime(&first, "a"), runtime(&second, "a"));
        assert!(Arc::ptr_eq(&a1.environments, &a2.environments));
        assert!(
            a2.built_environments().unwrap()[0]
                .telemetry
                .registered()
                .is_some(),
            "registered series are kept"
        );
        let (b1, b2) = (runtime(&first, "b"), runtime(&second, "b"));
        assert!(!Arc::ptr_eq(&b1.environments, &b2.environments));
        assert!(b2.built_environments().is_none(), "built on first use");
        assert_eq!(
            b2.definition.throughput.limit(Environment::Production).caps[0],
            Some(20)
        );
    }

    #[test]
    fn a_changed_api_keeps_counting_in_the_same_cell_and_a_deleted_one_loses_it() {
        let counters = Counters::Local(LocalCounters::new());
        let first = RoutingSnapshot::build(
            input(vec![api("a", "/a", 10), api("b", "/b", 10)]),
            &counters,
            &RoutingSnapshot::default(),
        );
        runtime(&first, "a").environments(&counters);
        runtime(&first, "b").environments(&counters);
        let second = RoutingSnapshot::build(input(vec![api("a", "/a", 5)]), &counters, &first);

        let (Budget::Local(before), Budget::Local(after)) = (
            &runtime(&first, "a").environments(&counters)[0].budget,
            &runtime(&second, "a").environments(&counters)[0].budget,
        ) else {
            panic!("local budgets")
        };
        assert!(Arc::ptr_eq(before, after));
        assert_eq!(second.routes.len(), 1);
        let Counters::Local(local) = &counters else {
            unreachable!()
        };
        assert_eq!(local.len(), 2, "the cells of both environments of /a only");
    }
}
