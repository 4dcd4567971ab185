//! Every command name an ACL rule can name, with its categories, taken from the command table:
//! the data commands' specs and the connection commands' specs, subcommands included. A user's
//! command permissions are a bit per entry.

use std::collections::HashMap;
use std::sync::OnceLock;

use kvs_store::{Category, Spec};

/// One name a rule can allow or deny: a command, or a container's subcommand (`config|get`).
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) spec: &'static Spec,
    /// For a container, its subcommands' indices.
    pub(crate) children: Vec<usize>,
}

impl Entry {
    pub(crate) fn name(&self) -> &'static str {
        self.spec.name
    }

    pub(crate) fn is_in(&self, category: Category) -> bool {
        self.spec.categories.contains(&category)
    }
}

#[derive(Debug)]
pub(crate) struct Catalog {
    pub(crate) entries: Vec<Entry>,
    by_name: HashMap<&'static str, usize>,
}

impl Catalog {
    fn build(specs: impl IntoIterator<Item = &'static Spec>) -> Self {
        let mut catalog = Catalog {
            entries: Vec::new(),
            by_name: HashMap::new(),
        };
        for spec in specs {
            if catalog.by_name.contains_key(spec.name) {
                continue;
            }
            let parent = catalog.push(spec);
            for sub in spec.subcommands {
                let child = catalog.push(sub);
                catalog.entries[parent].children.push(child);
            }
        }
        catalog
    }

    fn push(&mut self, spec: &'static Spec) -> usize {
        let index = self.entries.len();
        self.entries.push(Entry {
            spec,
            children: Vec::new(),
        });
        self.by_name.insert(spec.name, index);
        index
    }

    /// The entry named `name` (lowercase: `get`, `config|get`).
    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The entry `spec` describes.
    pub(crate) fn of(&self, spec: &Spec) -> Option<usize> {
        self.find(spec.name)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The catalog of this build's command table, made once.
pub(crate) fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        Catalog::build(kvs_store::data_specs().chain(crate::resp::command::specs()))
    })
}

/// The category called `name` (`read`, `admin`, ...), case-insensitively.
pub(crate) fn category(name: &str) -> Option<Category> {
    Category::ALL
        .iter()
        .copied()
        .find(|c| c.name().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_and_their_subcommands_are_entries() {
        let catalog = catalog();
        let config = catalog.find("config").expect("config");
        let get = catalog.find("config|get").expect("config|get");
        assert!(catalog.entries[config].children.contains(&get));
        assert!(catalog.find("get").is_some());
        assert!(catalog.find("acl|setuser").is_some());
        assert_eq!(category("READ"), Some(Category::Read));
        assert_eq!(category("nosuch"), None);
    }
}
