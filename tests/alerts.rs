//! The alerting rules docs/OPERATIONS.md ships, as ops copy them: `promtool check rules`
//! accepts them, and `promtool test rules` shows each fires when it should, and not
//! when telemetry is merely off, and which destination loses records.

#[allow(dead_code, reason = "not every shared helper is used here")]
mod support;

use std::path::Path;
use std::process::Command;

/// The YAML block of docs/OPERATIONS.md that holds the rules (`groups:`).
fn documented_rules() -> String {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/OPERATIONS.md"))
            .expect("read docs/OPERATIONS.md");
    let mut blocks = guide.split("```yaml\n").skip(1).filter_map(|rest| {
        let block = rest.split("```").next()?;
        block.starts_with("groups:").then(|| block.to_owned())
    });
    let rules = blocks
        .next()
        .expect("a ```yaml block with the alerting rules");
    assert!(blocks.next().is_none(), "one block of rules, not several");
    rules
}

fn promtool_run(promtool: &Path, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_documented_alerts_pass_promtool_and_fire_only_when_they_should() {
    let Some(promtool) = support::promtool("alerts") else {
        return;
    };
    let dir = support::temp_dir("alerts");
    std::fs::write(dir.join("rules.yml"), documented_rules()).unwrap();
    let (ok, said) = promtool_run(&promtool, &dir, &["check", "rules", "rules.yml"]);
    assert!(ok, "promtool check rules: {said}");

    // Two targets of the app: `a` is up with telemetry off, `b` is down. Only `b` is
    // an endpoint down; `a` records nothing and raises nothing. Then `a` is turned on
    // and overflows a series cap.
    std::fs::write(
        dir.join("test.yml"),
        r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="my-app", instance="a:9464"}'
        values: '1x30'
      - series: 'telemetry_enabled{job="my-app", instance="a:9464"}'
        values: '0x10 1x20'
      - series: 'telemetry_series_overflow_records_total{job="my-app", instance="a:9464"}'
        values: '0x15 0 5 10 15 20 25 30 35 40 50 60 70 80 90 100'
      - series: 'up{job="my-app", instance="b:9464"}'
        values: '0x30'
      - series: 'telemetry_destination_records_total{job="my-app", instance="a:9464", destination="file", outcome="written"}'
        values: '0+100x30'
      - series: 'telemetry_destination_records_total{job="my-app", instance="a:9464", destination="file", outcome="dropped"}'
        values: '0x20 0+50x10'
      - series: 'telemetry_destination_records_total{job="my-app", instance="a:9464", destination="stdout", outcome="dropped"}'
        values: '0x30'
    alert_rule_test:
      - eval_time: 10m
        alertname: TelemetryEndpointDown
        exp_alerts:
          - exp_labels: {severity: critical, job: my-app, instance: "b:9464"}
      - eval_time: 10m
        alertname: TelemetryCardinalityOverflow
        exp_alerts: []
      - eval_time: 25m
        alertname: TelemetryCardinalityOverflow
        exp_alerts:
          - exp_labels: {severity: warning, job: my-app, instance: "a:9464"}
            exp_annotations:
              summary: 'a:9464: a metric name has more than 2,000 label sets; new ones are merged into otel_metric_overflow="true"'
      - eval_time: 15m
        alertname: TelemetryDestinationLosing
        exp_alerts: []
      - eval_time: 30m
        alertname: TelemetryDestinationLosing
        exp_alerts:
          - exp_labels: {severity: warning, instance: "a:9464", destination: file, outcome: dropped}
            exp_annotations:
              summary: 'a:9464: the file destination dropped 450 records in 15 minutes (standard error says why)'
"#,
    )
    .unwrap();
    let (ok, said) = promtool_run(&promtool, &dir, &["test", "rules", "test.yml"]);
    assert!(ok, "promtool test rules: {said}");
    std::fs::remove_dir_all(&dir).unwrap();
}
