//! Templates: minijinja with strict undefined values, trimmed blocks, and a fuel limit
//! (`artifact_template_fuel`), so a template cannot keep a server thread busy forever.

use super::{ArtifactError, Result};
use serde_json::Value;

fn template_env(fuel: u64) -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.set_fuel(Some(fuel));
    env
}

/// Checks that `source` compiles.
pub(crate) fn check_template(name: &str, source: &str) -> Result<()> {
    let env = template_env(u64::MAX); // compiling uses no fuel
    env.template_from_named_str(name, source)
        .map(|_| ())
        .map_err(|e| ArtifactError::TemplateDoesNotCompile(e.to_string()))
}

/// Renders `source` with the query's `data` as context: its top-level fields as variables,
/// and the whole of it as `data` (as Infrahub's Jinja2 transforms see it). `Err` is the
/// message recorded as the artifact's error.
pub(crate) async fn render_template(
    name: String,
    source: String,
    data: Value,
    fuel: u64,
) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let env = template_env(fuel);
        let template = env
            .template_from_named_str(&name, &source)
            .map_err(|e| format!("The template does not compile: {e}"))?;
        let mut context = data.as_object().cloned().unwrap_or_default();
        context.insert("data".into(), data);
        template
            .render(minijinja::value::Serde(Value::Object(context)))
            .map_err(|e| format!("Template rendering failed: {e}"))
    })
    .await
    .map_err(|_| "Template rendering failed".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FUEL: u64 = 20_000_000;

    #[test]
    fn templates_are_checked_and_rendered_strictly() {
        assert!(check_template("t", "{{ x }}").is_ok());
        let e = check_template("t", "{% for %}").unwrap_err();
        assert!(
            e.to_string().starts_with("The template does not compile"),
            "{e}"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let data = json!({"Branch": [{"name": "main"}, {"name": "b"}]});
        let out = rt
            .block_on(render_template(
                "t".into(),
                "{% for b in Branch %}\n{{ b.name }}\n{% endfor %}\n{{ data.Branch | length }}"
                    .into(),
                data.clone(),
                FUEL,
            ))
            .unwrap();
        assert_eq!(out, "main\nb\n2");
        let err = rt
            .block_on(render_template(
                "t".into(),
                "{{ missing.x }}".into(),
                data.clone(),
                FUEL,
            ))
            .unwrap_err();
        assert!(err.starts_with("Template rendering failed"), "{err}");
        let err = rt
            .block_on(render_template(
                "t".into(),
                "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
                    .into(),
                data.clone(),
                FUEL,
            ))
            .unwrap_err();
        assert!(err.contains("fuel"), "{err}");
        // The fuel is the setting's: a small budget stops a small loop.
        let err = rt
            .block_on(render_template(
                "t".into(),
                "{% for a in range(1000) %}x{% endfor %}".into(),
                data,
                100,
            ))
            .unwrap_err();
        assert!(err.contains("fuel"), "{err}");
    }
}
