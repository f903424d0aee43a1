//! The one way the DynamoDB adapters read a Query to its end: the SDK's
//! paginator, bounded in pages, errors as [`StoreError`].

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::describe_sdk_error;
use monitoring_core::ports::StoreError;

pub type Item = HashMap<String, AttributeValue>;

/// Every item `query` returns, following `LastEvaluatedKey` for at most
/// `max_pages` pages (more is an error naming `what`, not a silent cut).
/// `on_request` runs once per request made (request accounting).
pub async fn query_items(
    query: QueryFluentBuilder,
    max_pages: usize,
    what: &str,
    mut on_request: impl FnMut(),
) -> Result<Vec<Item>, StoreError> {
    let mut pages = query.into_paginator().send();
    let mut items = Vec::new();
    let mut read = 0;
    // The paginator ends (None) without a request once a page has no
    // LastEvaluatedKey; each Some is one request made.
    while let Some(page) = pages.next().await {
        on_request();
        if read == max_pages {
            return Err(StoreError::Unavailable(format!(
                "more than {max_pages} pages of {what}"
            )));
        }
        let page = page.map_err(|e| StoreError::Unavailable(describe_sdk_error(&e)))?;
        items.extend(page.items.unwrap_or_default());
        read += 1;
    }
    Ok(items)
}
