//! Route patterns and first-match lookup (docs/policy.md "Path patterns", docs/requests.md step 2).

use crate::auth::KindSet;
use http::Method;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: exactly one segment.
    Any,
}

/// A compiled path pattern: `/a/*/b`, optionally ending in `/**`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    /// As written in the policy.
    text: String,
    segments: Vec<Segment>,
    /// Ends in `/**`: matches the prefix itself and anything below it.
    prefix: bool,
}

/// Which credentials a route takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAuth {
    /// Public: no credential checked, identity headers still stripped.
    None,
    Kinds(KindSet),
}

#[derive(Debug)]
pub struct Route {
    pub name: Arc<str>,
    pub pattern: PathPattern,
    /// `None` = any method.
    pub methods: Option<Vec<Method>>,
    pub auth: RouteAuth,
    pub scopes: Vec<Arc<str>>,
    /// The route's scopes space-separated, for `WWW-Authenticate: … scope="…"`.
    pub scopes_joined: Arc<str>,
    pub rate_limit: Option<String>,
    /// `websocket: true`: upgrades pass here; elsewhere `Upgrade` is dropped.
    pub websocket: bool,
}

#[derive(Debug, Default)]
pub struct RouteTable {
    pub routes: Vec<Route>,
}

impl PathPattern {
    /// Parses a pattern, or says what is wrong with it and how to write it.
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("route path `{text}` must start with `/`"));
        };
        let (rest, prefix) = match rest.strip_suffix("**") {
            Some(r) if r.is_empty() || r.ends_with('/') => (r.strip_suffix('/').unwrap_or(r), true),
            _ => (rest, false),
        };
        let rest = if prefix {
            rest
        } else {
            rest.strip_suffix('/').unwrap_or(rest)
        };
        let mut segments = Vec::new();
        if !rest.is_empty() {
            for seg in rest.split('/') {
                segments.push(match seg {
                    "*" => Segment::Any,
                    "" => return Err(format!("route path `{text}` has an empty segment (`//`); write single slashes")),
                    "." | ".." => return Err(format!("route path `{text}` has a `{seg}` segment; requests are normalized, so write the path without dot segments")),
                    s if s.contains("**") => return Err(format!("route path `{text}`: `**` is only allowed as the last segment, as in `/orders/**`")),
                    s if s.contains('*') => return Err(format!("route path `{text}`: `*` must be a whole segment, as in `/users/*/profile`")),
                    s if s.contains(['%', '\\', ';', '?', '#']) || s.chars().any(|c| c.is_control() || c == ' ') => {
                        return Err(format!("route path `{text}` contains a character that a normalized request path never has (`%`, `\\`, `;`, `?`, `#`, space or control); write the decoded path"))
                    }
                    s => Segment::Literal(s.to_string()),
                });
            }
        }
        Ok(PathPattern {
            text: text.to_string(),
            segments,
            prefix,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Matches a normalized path. One trailing slash is ignored, so `/admin/keys/`
    /// cannot slip past an exact `/admin/keys` route to a broader one below it.
    pub fn matches(&self, path: &str) -> bool {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        let mut parts = trimmed.split('/').filter(|_| !trimmed.is_empty());
        for seg in &self.segments {
            match (seg, parts.next()) {
                (_, None) => return false,
                (Segment::Any, Some(p)) if !p.is_empty() => {}
                (Segment::Literal(l), Some(p)) if l == p => {}
                _ => return false,
            }
        }
        self.prefix || parts.next().is_none()
    }

    /// Whether every path this pattern's `other` matches is matched by `self` too.
    pub fn covers(&self, other: &PathPattern) -> bool {
        if !self.prefix && (other.prefix || other.segments.len() != self.segments.len()) {
            return false;
        }
        if other.segments.len() < self.segments.len() {
            return false;
        }
        self.segments
            .iter()
            .zip(&other.segments)
            .all(|(a, b)| match (a, b) {
                (Segment::Any, _) => true,
                (Segment::Literal(x), Segment::Literal(y)) => x == y,
                (Segment::Literal(_), Segment::Any) => false,
            })
    }
}

impl Route {
    /// RFC 9110 §9.3.2: a route that lists GET answers HEAD too, so HEAD can
    /// never fall past it to a later route that demands less.
    fn accepts_method(&self, method: &Method) -> bool {
        self.methods.as_ref().is_none_or(|m| {
            m.contains(method) || (*method == Method::HEAD && m.contains(&Method::GET))
        })
    }

    /// Whether this route asks less than `other`: public where `other` is
    /// not, or a subset of its scopes that is smaller or open to other
    /// credential kinds. Routes asking for different scopes are not compared.
    fn demands_less_than(&self, other: &Route) -> bool {
        match (&self.auth, &other.auth) {
            (_, RouteAuth::None) => false,
            (RouteAuth::None, _) => true,
            (RouteAuth::Kinds(mine), RouteAuth::Kinds(theirs)) => {
                let subset = self.scopes.iter().all(|s| other.scopes.contains(s));
                let fewer = self.scopes.len() < other.scopes.len();
                let wider = (mine.api_key && !theirs.api_key)
                    || (mine.jwt && !theirs.jwt)
                    || (mine.introspection && !theirs.introspection);
                subset && (fewer || wider)
            }
        }
    }

    /// Whether this route matches every request `later` matches (a shadow).
    pub fn shadows(&self, later: &Route) -> bool {
        let methods_cover = match (&self.methods, &later.methods) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => b.iter().all(|m| a.contains(m)),
        };
        methods_cover && self.pattern.covers(&later.pattern)
    }
}

impl RouteTable {
    /// First match in file order (docs/requests.md step 2).
    pub fn find(&self, method: &Method, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.pattern.matches(path) && r.accepts_method(method))
    }

    /// Pairs (earlier, later, method): a request with `method` on a path both
    /// match falls past the method-restricted earlier route to the later one,
    /// which demands less (public, fewer scopes, or other credential kinds).
    pub fn method_gaps(&self) -> Vec<(usize, usize, String)> {
        let mut out = Vec::new();
        for (i, earlier) in self.routes.iter().enumerate() {
            if earlier.methods.is_none() {
                continue;
            }
            let gap = self.routes[i + 1..]
                .iter()
                .enumerate()
                .find_map(|(k, later)| {
                    let overlap = later.pattern.covers(&earlier.pattern)
                        || earlier.pattern.covers(&later.pattern);
                    if !overlap || !later.demands_less_than(earlier) {
                        return None;
                    }
                    let falls_through = |m: &Method| !earlier.accepts_method(m);
                    let method = match &later.methods {
                        None => Some(
                            [
                                Method::GET,
                                Method::POST,
                                Method::PUT,
                                Method::PATCH,
                                Method::DELETE,
                            ]
                            .into_iter()
                            .find(|m| falls_through(m))
                            .unwrap_or(Method::OPTIONS),
                        ),
                        Some(ms) => ms.iter().find(|m| falls_through(m)).cloned(),
                    }?;
                    Some((i + 1 + k, method.to_string()))
                });
            if let Some((j, method)) = gap {
                out.push((i, j, method));
            }
        }
        out
    }

    /// Pairs (earlier, later) where the later route can never match.
    pub fn shadowed(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (j, later) in self.routes.iter().enumerate() {
            if let Some(i) = self.routes[..j].iter().position(|r| r.shadows(later)) {
                out.push((i, j));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathPattern {
        PathPattern::parse(s).expect("valid pattern")
    }

    #[test]
    fn exact_patterns_ignore_one_trailing_slash() {
        assert!(p("/healthz").matches("/healthz"));
        assert!(p("/admin/keys").matches("/admin/keys/"));
        assert!(!p("/healthz").matches("/healthzx"));
        assert!(!p("/healthz").matches("/healthz/x"));
        assert!(!p("/Healthz").matches("/healthz"));
        assert!(p("/").matches("/"));
        assert!(!p("/").matches("/x"));
    }

    #[test]
    fn double_star_matches_the_prefix_and_below_but_not_siblings() {
        let orders = p("/orders/**");
        for ok in ["/orders", "/orders/", "/orders/7", "/orders/7/lines"] {
            assert!(orders.matches(ok), "{ok}");
        }
        for no in ["/ordersx", "/order", "/", "/x/orders"] {
            assert!(!orders.matches(no), "{no}");
        }
        assert!(p("/**").matches("/"));
        assert!(p("/**").matches("/anything/at/all"));
    }

    #[test]
    fn star_matches_exactly_one_segment() {
        let pat = p("/users/*/profile");
        assert!(pat.matches("/users/42/profile"));
        assert!(!pat.matches("/users/profile"));
        assert!(!pat.matches("/users/4/2/profile"));
    }

    #[test]
    fn bad_patterns_are_refused_with_a_hint() {
        for bad in [
            "orders", "/a//b", "/a/**/b", "/a/b*", "/a/../b", "/a%2Fb", "/a;b",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn coverage_finds_shadowed_patterns() {
        assert!(p("/orders/**").covers(&p("/orders/7")));
        assert!(p("/orders/**").covers(&p("/orders/**")));
        assert!(p("/orders/**").covers(&p("/orders/*/lines/**")));
        assert!(p("/*/x").covers(&p("/a/x")));
        assert!(!p("/a/x").covers(&p("/*/x")));
        assert!(!p("/orders/7").covers(&p("/orders/**")));
        assert!(!p("/orders/**").covers(&p("/**")));
        assert!(!p("/orders/*").covers(&p("/orders")));
    }
}
