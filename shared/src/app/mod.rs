//! Use cases: each one reads through the ports, lets the domain decide, and writes atomically.

pub mod access;
pub mod account;
pub mod authoring;
pub mod catalog;
pub mod components;
pub mod corpus;
pub mod deploy;
pub mod deployments;
pub mod drift;
pub mod environments;
pub mod error;
pub mod fleet;
pub mod imports;
pub mod pushes;
pub mod services;
pub mod tags;
pub mod tasks;
pub mod upgrades;
pub mod webhook;

pub use error::{Error, Result};

/// Every item of a paged listing, page by page.
pub(crate) async fn every<T, F, Fut>(mut list: F) -> Result<Vec<T>>
where
    F: FnMut(crate::ports::PageRequest) -> Fut,
    Fut: std::future::Future<
            Output = std::result::Result<crate::ports::Page<T>, crate::ports::StoreError>,
        >,
{
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let page = list(crate::ports::PageRequest {
            limit: Some(100),
            cursor,
        })
        .await?;
        items.extend(page.items);
        cursor = page.cursor;
        if cursor.is_none() {
            return Ok(items);
        }
    }
}

#[cfg(test)]
mod tests;
