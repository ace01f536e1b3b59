//! The SAM template, the configuration code and the README stay in step: resources are named as
//! the local environment names them, and every variable the template sets is one the functions
//! read and the README documents.

use puente_tests::aws_local::StackNames;
use std::path::Path;

fn read(relative: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The variables set under `Environment: Variables:` in the template.
fn template_variables(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in template.lines() {
        let trimmed = line.trim();
        if trimmed == "Variables:" {
            inside = true;
            continue;
        }
        if inside {
            match trimmed.split_once(':') {
                Some((name, _))
                    if !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
                {
                    names.push(name.to_owned());
                }
                _ => inside = false,
            }
        }
    }
    names
}

#[test]
fn local_resources_are_named_as_the_template_names_them() {
    let template = read("infra/template.yaml");
    let names = StackNames::new("${AWS::StackName}");
    for name in [
        names.table,
        names.customer_queue,
        names.customer_dlq,
        names.webhook_secret,
        names.connector_secret,
    ] {
        assert!(
            template.contains(&format!("!Sub \"{name}\"")),
            "template has no resource named {name}"
        );
    }
}

#[test]
fn every_variable_the_template_sets_is_read_by_the_code_and_documented() {
    let template = read("infra/template.yaml");
    // The configuration code: the functions' settings, and the extra trust roots.
    let config = read("shared/src/config.rs") + &read("shared/src/tls.rs");
    let readme = read("README.md");
    let variables = template_variables(&template);
    assert!(variables.len() >= 12, "found {variables:?}");
    for name in variables {
        assert!(
            config.contains(&format!("\"{name}\"")),
            "{name} is set by the template but never read"
        );
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name} is not documented in the README"
        );
    }
}

#[test]
fn the_readme_shows_the_retry_taxonomy_as_the_code_defines_it() {
    let readme = read("README.md");
    for rule in shared::error::TAXONOMY {
        let covers = rule.covers.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            readme.contains(&format!("| {} | {covers} |", rule.kind.as_str())),
            "README's taxonomy table has no row for {:?} covering {covers:?}",
            rule.kind
        );
    }
}
