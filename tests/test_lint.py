"""Card-file linter: the real CLI over cards/ (as CI runs it), and one broken file per check."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from cds_service.cli import main
from support.helpers import REPO

# A valid card for the registered rule `hypomagnesemia-severe`. Line numbers matter to the tests below.
GOOD = textwrap.dedent("""\
    rule: hypomagnesemia-severe
    title: Severe hypomagnesemia in a dialysis patient
    indicator: warning
    thresholds: {mg_severe_low: {value: 0.40, unit: mmol/L},
                 acute_window: {value: 72, unit: h}, crrt_window: {value: 12, unit: h}, chronic_window: {value: 45, unit: d}}
    placeholders:
      mg: "< 0.50 mmol/L (1.22 mg/dL)"
      mg_time: "2026-11-24 23:59 UTC (29 d 23 h ago)"
      threshold: "0.70 mmol/L"
    summary: "Low magnesium {mg} on dialysis"
    detail: |
      **Magnesium {mg}**, taken {mg_time}.

      Target is at least {threshold}.
    source:
      label: "Reference"
      url: https://doi.org/10.1681/ASN.2007070792
    links:
      - label: "More"
        url: https://doi.org/10.1093/eurheartj/ehy060
    overrideReasons:
      - code: not-clinically-relevant
        display: Not clinically relevant
    """)


def lint_text(tmp_path, capsys, text: str, name: str = "hypomagnesemia-severe.yaml") -> tuple[int, list[str]]:
    folder = tmp_path / "cards"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    code = main(["cards", "lint", str(folder)])
    out = capsys.readouterr().out
    return code, [line for line in out.splitlines() if line.strip()]


def only_problem(lines: list[str], tmp_path, name: str = "hypomagnesemia-severe.yaml") -> tuple[int, str]:
    assert len(lines) == 1, lines
    prefix = f"{tmp_path / 'cards' / name}:"
    assert lines[0].startswith(prefix), lines[0]
    line, _, message = lines[0][len(prefix):].partition(": ")
    return int(line), message


def test_the_real_card_files_pass_through_the_real_cli():
    proc = subprocess.run([sys.executable, "-m", "cds_service.cli", "cards", "lint", str(REPO / "cards")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert "card file(s) checked: OK" in proc.stderr


def test_cli_without_path_lints_the_configured_folder(capsys, monkeypatch, tmp_path):
    (tmp_path / "hypomagnesemia-severe.yaml").write_text(GOOD.replace("indicator: warning", "indicator: loud"))
    monkeypatch.setenv("CDS_CARDS_DIR", str(tmp_path))
    assert main(["cards", "lint"]) == 1
    assert f"{tmp_path / 'hypomagnesemia-severe.yaml'}:3: indicator 'loud' is not valid" in capsys.readouterr().out


def test_a_good_file_passes(tmp_path, capsys):
    code, lines = lint_text(tmp_path, capsys, GOOD)
    assert (code, lines) == (0, [])


def test_summary_too_long_with_the_longest_example_values(tmp_path, capsys):
    long_value = "< 0.50 mmol/L (1.22 mg/dL) " + "x" * 100
    text = GOOD.replace('mg: "< 0.50 mmol/L (1.22 mg/dL)"', f'mg: "{long_value}"')
    code, lines = lint_text(tmp_path, capsys, text)
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 10
    assert message.startswith("summary is 153 characters with the longest example values; it must stay under 140")


def test_summary_short_as_written_but_long_once_filled_is_caught_in_variants_too(tmp_path, capsys):
    text = GOOD + textwrap.dedent("""\
        variants:
          info:
            indicator: info
            summary: "{mg} {mg} {mg} {mg} {mg} {mg}"
        """)
    code, lines = lint_text(tmp_path, capsys, text)
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 27
    assert message.startswith("variants.info.summary is 161 characters")


def test_placeholder_the_rule_does_not_provide(tmp_path, capsys):
    text = GOOD.replace("Target is at least {threshold}.", "Target is at least {threshold}; potassium {k}.")
    code, lines = lint_text(tmp_path, capsys, text)
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 14  # the line inside the | block
    assert message == ("detail: placeholder {k} is not declared under placeholders: (declared: mg, mg_time, "
                       "threshold); declare it with its longest realistic value, and have the rule fill it")


def test_placeholder_used_without_an_example(tmp_path, capsys):
    text = GOOD.replace('  mg_time: "2026-11-24 23:59 UTC (29 d 23 h ago)"\n', "")
    code, lines = lint_text(tmp_path, capsys, text)
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 11
    assert message.startswith("detail: placeholder {mg_time} is not declared under placeholders: (declared: mg, "
                              "threshold)")


@pytest.mark.parametrize("entry,message", [
    ("{value: 0.4O, unit: mmol/L}", "thresholds.mg_severe_low: value must be a number, got '0.4O'"),
    ('{value: "0.40", unit: mmol/L}', "thresholds.mg_severe_low: value must be a number, got '0.40'"),
    ("{value: 4.0, unit: mmol/L}", "thresholds.mg_severe_low: value 4 mmol/L is outside the plausible range "
                                   "0.2–0.6 mmol/L"),
    ("{value: 1.0, unit: mg/dL}", "thresholds.mg_severe_low: unit must be 'mmol/L', got 'mg/dL'"),
    ("0.40", "thresholds.mg_severe_low must be {value: <number>, unit: mmol/L}, got 0.4"),
    ("{value: 0.40}", "thresholds.mg_severe_low must be {value: <number>, unit: mmol/L}, got {'value': 0.4}"),
])
def test_threshold_typos_wrong_units_and_implausible_values_are_refused(tmp_path, capsys, entry, message):
    code, lines = lint_text(tmp_path, capsys, GOOD.replace("{mg_severe_low: {value: 0.40, unit: mmol/L},",
                                                           "{mg_severe_low: " + entry + ","))
    line, got = only_problem(lines, tmp_path)
    assert (code, line, got) == (1, 4, message)


def test_missing_and_unknown_thresholds_are_refused(tmp_path, capsys):
    text = GOOD.replace("{mg_severe_low: {value: 0.40, unit: mmol/L},", "{mg_severe_lo: {value: 0.40, unit: mmol/L},")
    code, lines = lint_text(tmp_path, capsys, text)
    assert code == 1 and len(lines) == 2, lines
    assert lines[1].endswith("thresholds.mg_severe_low is missing: rule 'hypomagnesemia-severe' reads it ({value: "
                             "..., unit: mmol/L}, plausible range 0.2–0.6)")
    assert lines[0].endswith("thresholds.mg_severe_lo: rule 'hypomagnesemia-severe' reads no threshold "
                             "'mg_severe_lo' (it reads: acute_window, chronic_window, crrt_window, mg_severe_low)")


def test_suggestion_text_may_use_its_kind_parameters_but_not_others(tmp_path, capsys):
    text = GOOD + textwrap.dedent("""\
        suggestions:
          order-lab:
            label: "Order {display}"
            description: "Order {display} ({loinc}) for {medication}"
        """)
    code, lines = lint_text(tmp_path, capsys, text)
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 27
    assert message.startswith("suggestions.order-lab.description: placeholder {medication} is not declared")


def test_broken_template_braces(tmp_path, capsys):
    text = GOOD.replace('summary: "Low magnesium {mg} on dialysis"', 'summary: "Low magnesium {mg on dialysis"')
    code, lines = lint_text(tmp_path, capsys, text)
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 10
    assert message.startswith("summary: broken template")


def test_source_url_missing(tmp_path, capsys):
    code, lines = lint_text(tmp_path, capsys, GOOD.replace("  url: https://doi.org/10.1681/ASN.2007070792\n", ""))
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 15
    assert message == "source.url is missing: cite the reference the card rests on"


def test_source_label_empty(tmp_path, capsys):
    code, lines = lint_text(tmp_path, capsys, GOOD.replace('label: "Reference"', 'label: ""'))
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 16
    assert message == "source.label is missing or empty"


def test_source_missing_entirely(tmp_path, capsys):
    text = GOOD.replace("source:\n  label: \"Reference\"\n  url: https://doi.org/10.1681/ASN.2007070792\n", "")
    code, lines = lint_text(tmp_path, capsys, text)
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 1
    assert message.startswith("source is missing")


def test_topic_code_must_be_a_registered_rule(tmp_path, capsys):
    text = GOOD.replace("rule: hypomagnesemia-severe", "rule: hypomagnesaemia-severe")
    code, lines = lint_text(tmp_path, capsys, text, name="hypomagnesaemia-severe.yaml")
    line, message = only_problem(lines, tmp_path, name="hypomagnesaemia-severe.yaml")
    assert code == 1 and line == 1
    assert message.startswith("rule 'hypomagnesaemia-severe' is not a registered rule")
    assert "hypomagnesemia-severe" in message  # names the rules that do exist


def test_file_name_must_match_the_rule(tmp_path, capsys):
    code, lines = lint_text(tmp_path, capsys, GOOD, name="low-mg.yaml")
    line, message = only_problem(lines, tmp_path, name="low-mg.yaml")
    assert code == 1 and line == 1
    assert message == ("file name 'low-mg.yaml' does not match rule 'hypomagnesemia-severe' (expected "
                       "hypomagnesemia-severe.yaml)")


@pytest.mark.parametrize("where,old,new,line", [
    ("indicator", "indicator: warning", "indicator: urgent", 3),
    ("variants.info.indicator", "", "variants:\n  info:\n    indicator: hard-stop\n", 26),
])
def test_indicator_must_be_valid(tmp_path, capsys, where, old, new, line):
    text = GOOD.replace(old, new) if old else GOOD + new
    code, lines = lint_text(tmp_path, capsys, text)
    got_line, message = only_problem(lines, tmp_path)
    assert code == 1 and got_line == line
    assert message.startswith(f"{where} '") and message.endswith("is not valid (use one of: info, warning, critical)")


def test_link_url_must_be_absolute_http(tmp_path, capsys):
    code, lines = lint_text(tmp_path, capsys, GOOD.replace("url: https://doi.org/10.1093/eurheartj/ehy060", "url: www.example.org"))
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 20
    assert message == "links[0].url must be an absolute http(s) URL, got 'www.example.org'"


def test_app_context_only_on_smart_links(tmp_path, capsys):
    text = GOOD.replace("    url: https://doi.org/10.1093/eurheartj/ehy060\n",
                        "    url: https://doi.org/10.1093/eurheartj/ehy060\n    appContext: \"patient=1\"\n")
    code, lines = lint_text(tmp_path, capsys, text)
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 21
    assert message == "links[0].appContext is only allowed on smart links (type: smart)"
    smart = text.replace("    appContext:", "    type: smart\n    appContext:")
    assert lint_text(tmp_path, capsys, smart) == (0, [])


def test_schema_unknown_key(tmp_path, capsys):
    code, lines = lint_text(tmp_path, capsys, GOOD.replace("title:", "tittle:"))
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 1
    assert message.startswith("schema: card file: Additional properties are not allowed ('tittle' was unexpected)")


def test_schema_wrong_type_points_at_the_key(tmp_path, capsys):
    code, lines = lint_text(tmp_path, capsys, GOOD.replace("indicator: warning", "indicator: warning\nstatus: 1"))
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 4
    assert message.startswith("schema: status: 1 is not one of ['active', 'silent', 'off']")


def test_yaml_syntax_error_has_its_line(tmp_path, capsys):
    code, lines = lint_text(tmp_path, capsys, GOOD.replace('label: "Reference"', 'label: "Reference'))
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line >= 16
    assert message.startswith("not valid YAML")


def test_duplicate_keys_are_reported(tmp_path, capsys):
    code, lines = lint_text(tmp_path, capsys, GOOD + 'summary: "Another summary"\n')
    line, message = only_problem(lines, tmp_path)
    assert code == 1 and line == 24
    assert message == "duplicate key 'summary' (the later one silently wins)"


def test_two_files_for_one_rule(tmp_path, capsys):
    folder = tmp_path / "cards"
    folder.mkdir()
    (folder / "hypomagnesemia-severe.yaml").write_text(GOOD)
    (folder / "hypomagnesemia-severe.yml").write_text(GOOD)
    assert main(["cards", "lint", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "already has a card file" in out and "file name 'hypomagnesemia-severe.yml'" not in out


def test_every_problem_of_a_file_is_reported_at_once(tmp_path, capsys):
    text = (GOOD.replace("indicator: warning", "indicator: urgent")
                .replace("url: https://doi.org/10.1093/eurheartj/ehy060", "url: ftp://example.org/more")
                .replace("{threshold}.", "{threshold} {k}."))
    code, lines = lint_text(tmp_path, capsys, text)
    assert code == 1
    assert [int(line.split(":")[1]) for line in lines] == [3, 14, 20]


@pytest.mark.parametrize("old,new,message", [
    ("Target is at least {threshold}.", "Target is at least {threshold}, as the seed says.",
     "detail: internal wording 'seed' (\"seed\")"),
    ("Target is at least {threshold}.", "Target is at least {threshold} (the project's verified reference).",
     "detail: internal wording 'project' (\"project's\")"),
    ('label: "Reference"', 'label: "Verified safety reference file"', "source.label: internal wording"),
    ('label: "More"', 'label: "The source cramp guidance"', "links.0.label: internal wording 'source guidance'"),
])
def test_internal_wording_is_refused(tmp_path, capsys, old, new, message):
    code, lines = lint_text(tmp_path, capsys, GOOD.replace(old, new))
    assert code == 1 and lines, lines
    assert any(line.split(": ", 1)[1].startswith(message) for line in lines), lines


@pytest.mark.parametrize("url,message", [
    ("https://dailymed.nlm.nih.gov/dailymed/search.cfm?query=gabapentin", "is a search-results page"),
    ("https://pubmed.ncbi.nlm.nih.gov/?term=gabapentin+cramps", "is a search-results page"),
    ("https://www.google.com/search?q=baclofen", "is a search-results page"),
    ("http://www.fda.gov/Drugs/DrugSafety/ucm218202.htm", "uses http://; use https://"),
    ("https://dailymed.nlm.nih.gov/dailymed/drugInfo.cfm?id=12", "is a DailyMed page without a setid"),
    ("https://example.org/reference", "is neither a guideline"),
    ("https://doi.org/not-a-doi", "is not a paper's page"),
])
def test_sources_must_be_a_guideline_a_label_or_a_paper(tmp_path, capsys, url, message):
    code, lines = lint_text(tmp_path, capsys, GOOD.replace("url: https://doi.org/10.1681/ASN.2007070792", f"url: {url}"))
    line, got = only_problem(lines, tmp_path)
    assert code == 1 and line == 17, lines
    assert got.startswith(f"source.url {message}"), got


@pytest.mark.parametrize("url", [
    "https://doi.org/10.1681/ASN.2007070792", "https://pubmed.ncbi.nlm.nih.gov/1768504/",
    "https://pmc.ncbi.nlm.nih.gov/articles/PMC9563282/", "https://kdigo.org/guidelines/ckd-mbd/",
    "https://dailymed.nlm.nih.gov/dailymed/drugInfo.cfm?setid=ee9ad9ed-6d9f-4ee1-9d7f-cfad438df388",
])
def test_guidelines_labels_and_papers_are_accepted(tmp_path, capsys, url):
    text = GOOD.replace("url: https://doi.org/10.1681/ASN.2007070792", f"url: {url}").replace(
        "url: https://doi.org/10.1093/eurheartj/ehy060", "url: https://doi.org/10.1093/eurheartj/ehy060")
    assert lint_text(tmp_path, capsys, text) == (0, [])
