//! `junit.xml`: one test case per gate, with a `<failure>` for each failed gate, for CI systems
//! that show JUnit reports.

use std::fmt::Write;

use super::summary::Summary;
use crate::gate::format_value;

/// Escapes text for XML content and attribute values. Characters XML 1.0 does not allow
/// (control characters other than tab, LF and CR) are replaced with U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Renders the JUnit report of a run's gates.
pub fn render(summary: &Summary) -> String {
    let failures = summary.gates.iter().filter(|g| !g.pass).count();
    let suite = escape(&format!("inferload.{}", summary.scenario));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"inferload\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" \
         time=\"{:.3}\">",
        summary.gates.len(),
        summary.load.measured_s
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" \
         skipped=\"0\" time=\"{:.3}\" timestamp=\"{}\">",
        summary.gates.len(),
        summary.load.measured_s,
        escape(&summary.started_at)
    );
    let _ = writeln!(out, "    <properties>");
    for (name, value) in [
        ("target", summary.target.url.as_str()),
        ("model", summary.target.model.as_str()),
        ("partial", if summary.partial { "true" } else { "false" }),
    ] {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            escape(value)
        );
    }
    let _ = writeln!(out, "    </properties>");
    for gate in &summary.gates {
        let value = match gate.value {
            Some(v) => format_value(v, &gate.unit),
            None => "missing".to_string(),
        };
        let _ = write!(
            out,
            "    <testcase classname=\"{suite}\" name=\"{}\" time=\"0\"",
            escape(&gate.name)
        );
        if gate.pass {
            let _ = writeln!(out, "/>");
            continue;
        }
        let mut message = format!(
            "{} = {value}, expected {} {}",
            gate.metric,
            gate.op,
            format_value(gate.threshold, &gate.unit)
        );
        if let Some(reason) = &gate.message {
            message.push_str(": ");
            message.push_str(reason);
        }
        let _ = writeln!(out, ">");
        let _ = writeln!(
            out,
            "      <failure message=\"{}\" type=\"GateFailed\">{}</failure>",
            escape(&message),
            escape(&message)
        );
        let _ = writeln!(out, "    </testcase>");
    }
    if summary.partial {
        let _ = writeln!(
            out,
            "    <system-out>The run was interrupted; its numbers cover {:.1}s.</system-out>",
            summary.load.measured_s
        );
    }
    let _ = writeln!(out, "  </testsuite>");
    let _ = writeln!(out, "</testsuites>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_controls() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(escape("x\u{1}y\tz"), "x\u{FFFD}y\tz");
    }
}
