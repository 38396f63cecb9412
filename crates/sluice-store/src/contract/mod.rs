//! The behaviour every [`DefinitionStore`](crate::DefinitionStore) must have,
//! written once as functions over `&dyn DefinitionStore` and run against each
//! implementation by [`contract_tests!`]: the SQLite and the PostgreSQL store
//! are held to the very same checks.
//!
//! What only one implementation has (file pragmas, connection loss, raw
//! corruption of its tables) is tested next to that implementation.

pub(crate) mod admin_users;
pub(crate) mod api_keys;
pub(crate) mod apis;
pub(crate) mod applications;
pub(crate) mod revision;
pub(crate) mod subscriptions;

use crate::StoreError;

/// Expands, in the calling module, to one `#[test]` per contract check, each
/// on a fresh store from the caller's `fresh_store()`, which returns a guard
/// kept alive for the test (a server, a directory; `()` if none) and the store.
macro_rules! contract_tests {
    () => {
        $crate::contract::contract_tests!(@modules
            revision {
                a_new_store_starts_at_revision_zero,
                revision_grows_by_one_with_every_kind_of_write,
                revision_stays_put_on_reads_and_failed_writes,
            }
            apis {
                definition_round_trips_verbatim_with_unknown_nested_fields_in_their_order,
                get_of_an_unknown_api_is_none,
                creating_an_api_with_a_taken_context_and_version_conflicts_and_changes_nothing,
                creating_an_api_with_a_taken_id_conflicts,
                same_context_with_another_version_is_a_different_api,
                replacing_an_api_onto_another_apis_context_and_version_conflicts_and_changes_nothing,
                replacing_an_api_keeps_created_at_and_replaces_the_rest,
                replacing_an_api_with_its_own_context_and_version_is_allowed,
                replacing_an_unknown_api_is_not_found,
                deleting_an_api_deletes_its_subscriptions_only,
                deleting_an_unknown_api_is_not_found,
                apis_are_listed_by_creation_time_then_insertion_order,
                visiting_apis_hands_each_one_whole_in_list_order,
            }
            applications {
                an_application_round_trips,
                creating_an_application_with_a_taken_name_conflicts_and_changes_nothing,
                creating_an_application_with_a_taken_id_conflicts,
                deleting_an_application_deletes_its_subscriptions_and_keys_only,
                deleting_an_unknown_application_is_not_found,
                applications_are_listed_in_insertion_order,
            }
            subscriptions {
                a_subscription_round_trips,
                subscribing_to_an_unknown_api_is_not_found,
                subscribing_an_unknown_application_is_not_found,
                subscribing_the_same_application_to_the_same_api_twice_conflicts,
                deleting_a_subscription_removes_it,
                deleting_an_unknown_subscription_is_not_found,
            }
            api_keys {
                a_key_round_trips_with_its_digest_type_and_expiry,
                a_key_for_an_unknown_application_is_not_found,
                a_key_with_a_taken_key_id_conflicts,
                revoking_marks_only_the_named_key,
                revoking_with_the_wrong_key_type_is_not_found_and_revokes_nothing,
                revoking_through_another_application_is_not_found_and_revokes_nothing,
                revoking_an_already_revoked_key_succeeds,
                keys_are_listed_in_insertion_order,
            }
            admin_users {
                an_unknown_admin_user_is_none,
                putting_an_existing_admin_user_replaces_its_password_hash,
            }
        );
    };
    (@modules $($module:ident { $($check:ident),* $(,)? })*) => {
        mod contract {
            $(
                mod $module {
                    $(
                        #[test]
                        fn $check() {
                            let (_guard, store) = super::super::fresh_store();
                            $crate::contract::$module::$check(&store);
                        }
                    )*
                }
            )*
        }
    };
}

pub(crate) use contract_tests;

/// Panics unless `err` is a conflict saying exactly `expected`.
pub(crate) fn assert_conflict(err: StoreError, expected: &str) {
    match err {
        StoreError::Conflict(message) => assert_eq!(message, expected),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// What a not-found error names; panics on any other error.
pub(crate) fn not_found_message(err: StoreError) -> String {
    match err {
        StoreError::NotFound(what) => what,
        other => panic!("expected not found, got {other:?}"),
    }
}
