//! Seldon Core v2 `Experiment` resources (YAML), read for the split they configure.
//!
//! Only the fields that decide the split are read: `spec.candidates[].{name, weight}`,
//! `spec.default`, `spec.resourceType` and `spec.mirror`. A mirror receives copies of requests
//! but its responses never reach the client, so it has no share in the expected split.

use std::path::Path;

use serde::Deserialize;

/// An Experiment resource (`apiVersion: mlops.seldon.io/v1alpha1`, `kind: Experiment`).
#[derive(Debug, Deserialize)]
pub struct Experiment {
    pub kind: String,
    #[serde(default)]
    pub metadata: Metadata,
    pub spec: ExperimentSpec,
}

#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentSpec {
    /// The candidate that keeps serving when the experiment is deleted.
    pub default: Option<String>,
    pub candidates: Vec<Candidate>,
    pub mirror: Option<Mirror>,
    /// `model` (default) or `pipeline`.
    pub resource_type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Candidate {
    pub name: String,
    pub weight: u32,
}

#[derive(Debug, Deserialize)]
pub struct Mirror {
    pub name: String,
    pub percent: Option<u32>,
}

impl Experiment {
    /// Reads and checks an Experiment file. An error message names what is wrong and the fix.
    pub fn from_file(path: &Path) -> Result<Experiment, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_yaml(&text)
    }

    pub fn from_yaml(text: &str) -> Result<Experiment, String> {
        let experiment: Experiment = serde_norway::from_str(text)
            .map_err(|e| format!("is not a valid Seldon Experiment: {e}"))?;
        if experiment.kind != "Experiment" {
            return Err(format!(
                "has kind {:?}; expected a Seldon Core v2 `kind: Experiment`",
                experiment.kind
            ));
        }
        let spec = &experiment.spec;
        if spec.candidates.is_empty() || spec.candidates.iter().all(|c| c.weight == 0) {
            return Err("has no candidate with a weight above 0 in spec.candidates".into());
        }
        if let Some(default) = &spec.default {
            if !spec.candidates.iter().any(|c| &c.name == default) {
                return Err(format!(
                    "names spec.default {default:?}, which is not among spec.candidates"
                ));
            }
        }
        match spec.resource_type.as_deref() {
            None | Some("model") | Some("pipeline") => {}
            Some(other) => {
                return Err(format!(
                    "has spec.resourceType {other:?}; expected model or pipeline"
                ))
            }
        }
        Ok(experiment)
    }

    /// Returns the expected weight of each candidate, keyed as route labels name it: the model
    /// name, or `name.pipeline` for pipeline experiments.
    pub fn expected_weights(&self) -> Vec<(String, f64)> {
        let pipeline = self.spec.resource_type.as_deref() == Some("pipeline");
        self.spec
            .candidates
            .iter()
            .map(|c| {
                let key = if pipeline {
                    format!("{}.pipeline", c.name)
                } else {
                    c.name.clone()
                };
                (key, f64::from(c.weight))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AB: &str = r#"
apiVersion: mlops.seldon.io/v1alpha1
kind: Experiment
metadata:
  name: financial-ab-test-experiment
spec:
  default: baseline-predictor
  candidates:
  - name: baseline-predictor
    weight: 70
  - name: enhanced-predictor
    weight: 30
  mirror:
    name: shadow-predictor
    percent: 100
"#;

    #[test]
    fn reads_candidates_and_ignores_mirror() {
        let experiment = Experiment::from_yaml(AB).unwrap();
        assert_eq!(
            experiment.expected_weights(),
            vec![
                ("baseline-predictor".to_string(), 70.0),
                ("enhanced-predictor".to_string(), 30.0)
            ]
        );
        assert_eq!(experiment.spec.mirror.unwrap().name, "shadow-predictor");
        assert_eq!(
            experiment.metadata.name.as_deref(),
            Some("financial-ab-test-experiment")
        );
    }

    #[test]
    fn pipeline_keys() {
        let text = AB.replace(
            "  default: baseline-predictor\n",
            "  resourceType: pipeline\n",
        );
        let weights = Experiment::from_yaml(&text).unwrap().expected_weights();
        assert_eq!(weights[0].0, "baseline-predictor.pipeline");
    }

    #[test]
    fn rejects_bad_files() {
        let wrong_kind = AB.replace("kind: Experiment", "kind: Model");
        assert!(Experiment::from_yaml(&wrong_kind)
            .unwrap_err()
            .contains("kind"));
        let bad_default = AB.replace("default: baseline-predictor", "default: nope");
        assert!(Experiment::from_yaml(&bad_default)
            .unwrap_err()
            .contains("spec.default"));
        let negative = AB.replace("weight: 30", "weight: -30");
        assert!(Experiment::from_yaml(&negative).is_err());
        assert!(Experiment::from_yaml("kind: Experiment\nspec:\n  candidates: []\n").is_err());
        assert!(Experiment::from_yaml(": not yaml: [").is_err());
    }
}
