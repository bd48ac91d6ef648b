//! A parser of the Prometheus text exposition format (version 0.0.4): sample lines
//! `name{label="value",...} value [timestamp]`, with comments and `# TYPE`/`# HELP` lines
//! skipped. Only what the model-time breakdown needs: names, labels and values.

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A line that is not valid exposition format.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole exposition text.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample = parse_line(line).map_err(|message| ParseError {
            line: index + 1,
            message,
        })?;
        samples.push(sample);
    }
    Ok(samples)
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_ascii_whitespace())
        .ok_or_else(|| format!("no value after the metric name in {line:?}"))?;
    let name = &line[..name_end];
    let valid_name = name.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    });
    if name.is_empty() || !valid_name {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after_brace)?;
        labels = parsed;
        rest = remaining;
    }
    let mut fields = rest.split_ascii_whitespace();
    let value_text = fields
        .next()
        .ok_or_else(|| format!("no value for {name}"))?;
    let value = parse_value(value_text)
        .ok_or_else(|| format!("invalid value {value_text:?} for {name}"))?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Label names and values of one sample, in the order written.
type Labels = Vec<(String, String)>;

/// Parses `label="value",...}` and returns the labels and the text after the brace.
fn parse_labels(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = text
            .find('=')
            .ok_or_else(|| format!("label without `=` in {text:?}"))?;
        let key = text[..eq].trim().to_string();
        if key.is_empty() {
            return Err("empty label name".into());
        }
        let after = text[eq + 1..].trim_start();
        let mut chars = after
            .strip_prefix('"')
            .ok_or_else(|| format!("label {key} has an unquoted value"))?
            .char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label {key} has an unterminated value")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("label {key} ends in a backslash")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((key, value));
        // `end` indexes the closing quote within `after` minus its opening quote.
        text = after[1 + end + 1..].trim_start();
        if let Some(rest) = text.strip_prefix(',') {
            text = rest;
        }
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mlserver_lines() {
        let text = r#"
# HELP model_infer_request_duration Model infer request duration
# TYPE model_infer_request_duration summary
model_infer_request_duration_count{model="baseline-predictor",version="None"} 120.0
model_infer_request_duration_sum{model="baseline-predictor",version="None"} 0.0731
rest_server_request_duration_seconds_bucket{le="0.005",method="POST",path="/v2/models/{model_name}/infer",status="200"} 7.0
rest_server_request_duration_seconds_bucket{le="+Inf",method="POST",path="/v2/models/{model_name}/infer",status="200"} 9.0
up 1 1700000000000
escaped{a="x\"y\\z\nw", b = "2",} 3e-3
"#;
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 6);
        assert_eq!(samples[0].name, "model_infer_request_duration_count");
        assert_eq!(samples[0].label("model"), Some("baseline-predictor"));
        assert_eq!(samples[0].label("version"), Some("None"));
        assert_eq!(samples[0].value, 120.0);
        assert_eq!(samples[3].label("le"), Some("+Inf"));
        assert_eq!(
            samples[3].label("path"),
            Some("/v2/models/{model_name}/infer")
        );
        assert_eq!(samples[4].value, 1.0);
        assert!(samples[4].labels.is_empty());
        assert_eq!(samples[5].label("a"), Some("x\"y\\z\nw"));
        assert_eq!(samples[5].label("b"), Some("2"));
        assert_eq!(samples[5].value, 0.003);
    }

    #[test]
    fn special_values() {
        let samples = parse("a +Inf\nb -Inf\nc NaN\n").unwrap();
        assert_eq!(samples[0].value, f64::INFINITY);
        assert_eq!(samples[1].value, f64::NEG_INFINITY);
        assert!(samples[2].value.is_nan());
    }

    #[test]
    fn rejects_junk() {
        for junk in [
            "novalue",
            "a{b=\"1\" 2",
            "a{b=1} 2",
            "a{b=\"1\"} x",
            "1abc 2",
            "a{=\"1\"} 2",
        ] {
            let error = parse(junk).unwrap_err();
            assert_eq!(error.line, 1, "{junk}");
        }
    }
}
