//! Admin users: looked up by name; putting one again replaces its hash.

use crate::DefinitionStore;
use crate::fixtures::admin;

pub(crate) fn an_unknown_admin_user_is_none(store: &dyn DefinitionStore) {
    assert_eq!(store.get_admin_user("admin").unwrap(), None);
}

pub(crate) fn putting_an_existing_admin_user_replaces_its_password_hash(
    store: &dyn DefinitionStore,
) {
    store.put_admin_user(&admin("admin", "old")).unwrap();
    store.put_admin_user(&admin("other", "theirs")).unwrap();

    store.put_admin_user(&admin("admin", "new")).unwrap();

    assert_eq!(
        store.get_admin_user("admin").unwrap(),
        Some(admin("admin", "new"))
    );
    assert_eq!(
        store.get_admin_user("other").unwrap(),
        Some(admin("other", "theirs"))
    );
}
