//! Phase 2, route: normalise the request path and find the API whose
//! `/{context}/{version}` prefix matches it on whole segments.
//!
//! Normalisation resolves `.` and `..` (also percent-encoded) and empty
//! segments before matching, so the remainder joined to an endpoint never
//! holds a `..`; a `..` that would climb above the root is refused.

use std::borrow::Cow;
use std::sync::Arc;

/// A request path split at its API's route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'a, T> {
    /// What the route maps to.
    pub target: &'a Arc<T>,
    /// The rest of the normalised path after the route, `""` or starting with `/`.
    pub rest: String,
}

/// Why a path could not be normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPath;

/// Resolve `.`, `..` and empty segments. Percent-encoded dots count as dots.
pub fn normalise(path: &str) -> Result<Vec<&str>, InvalidPath> {
    if !path.starts_with('/') {
        return Err(InvalidPath);
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match dot_segment(segment.as_bytes()) {
            Some(1) => {}
            Some(_) => {
                segments.pop().ok_or(InvalidPath)?;
            }
            None if segment.is_empty() => {}
            None => segments.push(segment),
        }
    }
    Ok(segments)
}

/// `Some(1)` for `.`, `Some(2)` for `..` (also `%2e`, `%2E` forms), else `None`.
fn dot_segment(segment: &[u8]) -> Option<u8> {
    let mut rest = segment;
    let mut dots = 0u8;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(b".") {
            rest = after;
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            rest = &rest[3..];
        } else {
            return None;
        }
        dots += 1;
        if dots > 2 {
            return None;
        }
    }
    (dots > 0).then_some(dots)
}

/// A map the request path only looks up in, filled from what the admin
/// published: hashed with foldhash, several times faster than the standard
/// SipHash. Flooding a map needs chosen insertions, and a client chooses
/// only lookups, which cannot lengthen a chain.
pub(crate) type LookupMap<K, V> = foldhash::HashMap<K, V>;
/// The set kind of [`LookupMap`].
pub(crate) type LookupSet<T> = foldhash::HashSet<T>;

/// An immutable table from route (`/pizzashack/1.0.0`) to target.
#[derive(Debug)]
pub struct RouteTable<T> {
    routes: LookupMap<String, Arc<T>>,
    max_depth: usize,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self {
            routes: LookupMap::default(),
            max_depth: 0,
        }
    }
}

impl<T> Clone for RouteTable<T> {
    fn clone(&self) -> Self {
        Self {
            routes: self.routes.clone(),
            max_depth: self.max_depth,
        }
    }
}

impl<T> RouteTable<T> {
    /// Add a route; the route must be normalised (`/a/b`, no trailing `/`).
    pub fn insert(&mut self, route: &str, target: Arc<T>) {
        self.max_depth = self.max_depth.max(route.split('/').count() - 1);
        self.routes.insert(route.to_owned(), target);
    }

    /// Remove a route; the table keeps its depth (an upper bound for
    /// lookups).
    pub fn remove(&mut self, route: &str) -> Option<Arc<T>> {
        self.routes.remove(route)
    }

    /// Every target.
    pub fn values(&self) -> impl Iterator<Item = &Arc<T>> {
        self.routes.values()
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when there are no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The longest route that is a whole-segment prefix of `path`.
    pub fn find(&self, path: &str) -> Result<Option<Matched<'_, T>>, InvalidPath> {
        // Nearly every path is normal already, and is looked up as it is.
        let path = if is_normal(path) {
            Cow::Borrowed(path)
        } else {
            Cow::Owned(normalised(path)?)
        };
        Ok(self.find_in_normal(&path))
    }

    /// [`find`](Self::find) in a normal path: every candidate route is a
    /// prefix of the path itself, longest first, so none is built to be
    /// looked up.
    fn find_in_normal(&self, path: &str) -> Option<Matched<'_, T>> {
        let segments = path.strip_suffix('/').unwrap_or(path);
        // Bytes, not chars: `/` is ASCII, and paths are short.
        let slashes = || segments.bytes().enumerate().filter(|(_, b)| *b == b'/');
        // The end of the longest candidate: at most `max_depth` segments.
        let mut end = slashes()
            .nth(self.max_depth)
            .map_or(segments.len(), |(at, _)| at);
        while end > 0 {
            if let Some(target) = self.routes.get(&segments[..end]) {
                let rest = path[end..].to_owned();
                return Some(Matched { target, rest });
            }
            end = segments.as_bytes()[..end]
                .iter()
                .rposition(|b| *b == b'/')?;
        }
        None
    }
}

/// `path` with its dot and empty segments resolved ([`normalise`]), and its
/// trailing `/` kept.
fn normalised(path: &str) -> Result<String, InvalidPath> {
    let mut normal = String::with_capacity(path.len());
    for segment in normalise(path)? {
        normal.push('/');
        normal.push_str(segment);
    }
    if path.ends_with('/') {
        normal.push('/');
    }
    Ok(normal)
}

/// True when [`normalise`] would change nothing but a trailing `/`: the path
/// starts with `/` and has no empty or dot segment.
fn is_normal(path: &str) -> bool {
    let Some(segments) = path.strip_prefix('/') else {
        return false;
    };
    let segments = segments.strip_suffix('/').unwrap_or(segments);
    segments.is_empty()
        || segments
            .as_bytes()
            .split(|b| *b == b'/')
            .all(|segment| !segment.is_empty() && dot_segment(segment).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(routes: &[&str]) -> RouteTable<String> {
        let mut table = RouteTable::default();
        for route in routes {
            table.insert(route, Arc::new(route.to_string()));
        }
        table
    }

    fn find(table: &RouteTable<String>, path: &str) -> Option<(String, String)> {
        table
            .find(path)
            .unwrap()
            .map(|m| (m.target.as_str().to_owned(), m.rest))
    }

    #[test]
    fn matches_whole_segments_only() {
        let table = table(&["/a/v1"]);
        assert_eq!(find(&table, "/a/v1"), Some(("/a/v1".into(), "".into())));
        assert_eq!(
            find(&table, "/a/v1/orders/7"),
            Some(("/a/v1".into(), "/orders/7".into()))
        );
        assert_eq!(find(&table, "/a/v10"), None);
        assert_eq!(find(&table, "/a/v10/x"), None);
        assert_eq!(find(&table, "/a"), None);
    }

    #[test]
    fn longest_route_wins() {
        let table = table(&["/a/v1", "/a/v1/b/v2"]);
        assert_eq!(
            find(&table, "/a/v1/b/v2/x"),
            Some(("/a/v1/b/v2".into(), "/x".into()))
        );
        assert_eq!(
            find(&table, "/a/v1/b/x"),
            Some(("/a/v1".into(), "/b/x".into()))
        );
    }

    #[test]
    fn trailing_slash_is_kept_for_the_backend() {
        let table = table(&["/a/v1"]);
        assert_eq!(find(&table, "/a/v1/"), Some(("/a/v1".into(), "/".into())));
        assert_eq!(
            find(&table, "/a/v1/x/"),
            Some(("/a/v1".into(), "/x/".into()))
        );
    }

    #[test]
    fn dots_are_resolved_before_matching() {
        let table = table(&["/a/v1", "/b/v1"]);
        assert_eq!(
            find(&table, "/a/v1/./x//y"),
            Some(("/a/v1".into(), "/x/y".into()))
        );
        assert_eq!(
            find(&table, "/b/v1/../../a/v1/x"),
            Some(("/a/v1".into(), "/x".into()))
        );
        assert_eq!(find(&table, "/a/v1/%2e%2E/v2"), None);
    }

    #[test]
    fn climbing_above_the_root_is_refused() {
        let table = table(&["/a/v1"]);
        assert_eq!(
            table.find("/a/v1/../../../etc/passwd").unwrap_err(),
            InvalidPath
        );
        assert_eq!(table.find("/%2e%2e/a/v1").unwrap_err(), InvalidPath);
    }

    #[test]
    fn dot_segments_are_only_pure_dots() {
        assert_eq!(dot_segment(b"..."), None);
        assert_eq!(dot_segment(b".a"), None);
        assert_eq!(dot_segment(b"%2E."), Some(2));
        assert_eq!(dot_segment(b"%2"), None);
    }

    proptest! {
        #[test]
        fn rest_never_contains_dot_segments(path in "(/(\\.|\\.\\.|%2e|a|v1|[a-z%]{1,4})){0,8}/?") {
            let table = table(&["/a/v1"]);
            if let Ok(Some(matched)) = table.find(&format!("/{path}")) {
                prop_assert!(matched.rest.is_empty() || matched.rest.starts_with('/'));
                for segment in matched.rest.split('/') {
                    prop_assert!(dot_segment(segment.as_bytes()).is_none());
                }
            }
        }

        #[test]
        fn normalise_never_panics(path in "\\PC{0,64}") {
            let _ = normalise(&path);
        }
    }
}
