//! WSO2's paged lists: `limit` / `offset` parsing, the `query=name:X` filter,
//! and the `{count, list, pagination}` shape with next / previous links.

use crate::dto::{ListDto, PaginationDto};
use crate::error::AdminError;

/// Page size when the client names none (WSO2's default).
const DEFAULT_LIMIT: usize = 25;

/// Largest `limit` and `offset`, as the OpenAPI document states them (32-bit).
pub(crate) const MAX_NUMBER: usize = i32::MAX as usize;

/// Which slice of a list a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    limit: usize,
    offset: usize,
}

impl Page {
    /// Parse the raw `limit` and `offset` query parameters.
    pub(crate) fn parse(limit: Option<&str>, offset: Option<&str>) -> Result<Self, AdminError> {
        let number = |raw: Option<&str>, field: &str, default: usize| match raw {
            None => Ok(default),
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(number) if number <= MAX_NUMBER => Ok(number),
                Ok(_) => Err(AdminError::invalid(
                    field,
                    format!("must be at most {MAX_NUMBER}"),
                )),
                Err(_) => Err(AdminError::invalid(
                    field,
                    format!("must be a whole number, got {raw:?}"),
                )),
            },
        };
        let limit = number(limit, "limit", DEFAULT_LIMIT)?;
        if limit == 0 {
            return Err(AdminError::invalid("limit", "must be at least 1"));
        }
        Ok(Page {
            limit,
            offset: number(offset, "offset", 0)?,
        })
    }

    /// This page of `items` (the whole, filtered result), with links that
    /// repeat `path` and the `filters` query parameters.
    pub(crate) fn of<T>(self, items: Vec<T>, path: &str, filters: &[(&str, &str)]) -> ListDto<T> {
        let total = items.len();
        let list: Vec<T> = items
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect();
        let link = |offset: usize| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("limit", &self.limit.to_string());
            query.append_pair("offset", &offset.to_string());
            for (key, value) in filters {
                query.append_pair(key, value);
            }
            format!("{path}?{}", query.finish())
        };
        let next = match self.offset.checked_add(self.limit) {
            Some(next) if next < total => link(next),
            _ => String::new(),
        };
        let previous = if self.offset > 0 {
            link(self.offset.saturating_sub(self.limit))
        } else {
            String::new()
        };
        ListDto {
            count: list.len(),
            list,
            pagination: PaginationDto {
                offset: self.offset,
                limit: self.limit,
                total,
                next,
                previous,
            },
        }
    }
}

/// The lower-cased name fragment of `query=name:X` (or a bare `query=X`);
/// `None` when there is nothing to filter on.
pub(crate) fn name_filter(query: Option<&str>) -> Result<Option<String>, AdminError> {
    let Some(query) = query.map(str::trim).filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    let fragment = match query.split_once(':') {
        Some((attribute, value)) if attribute.trim().eq_ignore_ascii_case("name") => value,
        Some((attribute, _)) => {
            return Err(AdminError::invalid(
                "query",
                format!("searching by {attribute:?} is not supported; use name:X"),
            ));
        }
        None => query,
    };
    let fragment = fragment.trim().to_lowercase();
    Ok((!fragment.is_empty()).then_some(fragment))
}

/// True when `name` contains the filter's fragment, ignoring case.
pub(crate) fn name_matches(filter: Option<&str>, name: &str) -> bool {
    filter.is_none_or(|fragment| name.to_lowercase().contains(fragment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_25_from_the_start() {
        assert_eq!(
            Page::parse(None, None).unwrap(),
            Page {
                limit: 25,
                offset: 0
            }
        );
    }

    #[test]
    fn bad_limit_or_offset_is_refused_naming_it() {
        let field = |e: AdminError| match e {
            AdminError::Invalid(e) => e.field,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(field(Page::parse(Some("x"), None).unwrap_err()), "limit");
        assert_eq!(field(Page::parse(Some("0"), None).unwrap_err()), "limit");
        assert_eq!(field(Page::parse(None, Some("-1")).unwrap_err()), "offset");
        assert_eq!(
            field(Page::parse(None, Some("2147483648")).unwrap_err()),
            "offset"
        );
        assert!(Page::parse(Some("2147483647"), Some("2147483647")).is_ok());
    }

    #[test]
    fn middle_page_links_both_ways_and_keeps_filters() {
        let page = Page::parse(Some("2"), Some("2")).unwrap();
        let list = page.of((0..5).collect(), "/x", &[("query", "name:a b")]);
        assert_eq!(list.list, vec![2, 3]);
        assert_eq!(list.count, 2);
        assert_eq!(list.pagination.total, 5);
        assert_eq!(list.pagination.next, "/x?limit=2&offset=4&query=name%3Aa+b");
        assert_eq!(
            list.pagination.previous,
            "/x?limit=2&offset=0&query=name%3Aa+b"
        );
    }

    #[test]
    fn last_page_has_no_next_and_first_no_previous() {
        let list = Page::parse(None, None).unwrap().of(vec![1, 2], "/x", &[]);
        assert_eq!(list.pagination.next, "");
        assert_eq!(list.pagination.previous, "");
    }

    #[test]
    fn name_filter_accepts_prefixed_and_bare_queries() {
        assert_eq!(
            name_filter(Some("name:Pizza")).unwrap().as_deref(),
            Some("pizza")
        );
        assert_eq!(name_filter(Some("PIZ")).unwrap().as_deref(), Some("piz"));
        assert_eq!(name_filter(Some("")).unwrap(), None);
        assert!(name_filter(Some("context:/a")).is_err());
        assert!(name_matches(Some("izz"), "Pizza"));
        assert!(!name_matches(Some("x"), "Pizza"));
    }
}
