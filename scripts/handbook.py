"""Writes docs/xantragsstatus.md, the German message handbook of XAntragsstatus, from the XSD and the code lists.

    python scripts/handbook.py            write the handbook
    python scripts/handbook.py --check    exit 1 (and say what to run) if the committed handbook differs

Everything in the handbook that describes the schema is read from ``rueckkanal/data/xoev/xantragsstatus-2.0.0.xsd``, the
genericode lists, the lifecycle table (``rueckkanal/lifecycle.py``) and the text rules (``rueckkanal/model.py``,
``rueckkanal/latinchars.py``); the prose around it is in this file. The output is deterministic (no dates, sorted
where the sources have no order), so ``scripts/test.sh`` can regenerate it and compare.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rueckkanal import latinchars  # noqa: E402
from rueckkanal.codelists import CodeList, codelists  # noqa: E402
from rueckkanal.lifecycle import ENTRY_STATUSES, TRANSITIONS, V1_TO_V2_STATUS  # noqa: E402
from rueckkanal.model import _REQUIRED_FOR_STATUS, TEXT_RULES  # noqa: E402
from rueckkanal.xoev import NAMESPACE, PREVIOUS_NAMESPACES, VERSION, XSD_PATH  # noqa: E402

OUTPUT = ROOT / "docs" / "xantragsstatus.md"
XS = "{http://www.w3.org/2001/XMLSchema}"


@dataclass(frozen=True)
class Row:
    path: str
    type: str
    cardinality: str
    doc: str


class Schema:
    """The parts of the XSD the handbook reads."""

    def __init__(self, path: Path) -> None:
        self.tree = etree.parse(str(path))
        root = self.tree.getroot()
        self.complex = {t.get("name"): t for t in root.iterfind(f"{XS}complexType")}
        self.simple = {t.get("name"): t for t in root.iterfind(f"{XS}simpleType")}
        self.roots = list(root.iterfind(f"{XS}element"))

    @staticmethod
    def doc(node: etree._Element) -> str:
        text = node.findtext(f"{XS}annotation/{XS}documentation") or ""
        return " ".join(text.split())

    @staticmethod
    def local(type_name: str | None) -> str:
        return (type_name or "").split(":")[-1]

    def particles(self, complex_type: etree._Element) -> Iterator[tuple[etree._Element, bool]]:
        """The elements of a complex type in order, with the base type's first; (element, in a choice)."""
        extension = complex_type.find(f"{XS}complexContent/{XS}extension")
        holder = complex_type
        if extension is not None:
            base = self.complex.get(self.local(extension.get("base")))
            if base is not None:
                yield from self.particles(base)
            holder = extension
        sequence = holder.find(f"{XS}sequence")
        if sequence is None:
            return
        for child in sequence:
            if child.tag == f"{XS}element":
                yield child, False
            elif child.tag == f"{XS}choice":
                for option in child.iterfind(f"{XS}element"):
                    yield option, True

    def attributes(self, complex_type: etree._Element) -> Iterator[etree._Element]:
        extension = complex_type.find(f"{XS}complexContent/{XS}extension")
        if extension is not None:
            base = self.complex.get(self.local(extension.get("base")))
            if base is not None:
                yield from self.attributes(base)
        yield from complex_type.iterfind(f"{XS}attribute")

    def rows(self, complex_type: etree._Element, prefix: str = "") -> Iterator[Row]:
        for element, in_choice in self.particles(complex_type):
            name = element.get("name", "")
            type_name = self.local(element.get("type"))
            low, high = element.get("minOccurs", "1"), element.get("maxOccurs", "1")
            cardinality = f"{'0' if in_choice else low}..{'n' if high == 'unbounded' else high}"
            doc = self.doc(element) + (" (Auswahl: genau eines der Elemente dieser Auswahl)" if in_choice else "")
            path = f"{prefix}{name}"
            yield Row(path, type_name, cardinality, doc)
            nested = self.complex.get(type_name)
            if nested is not None and not type_name.startswith("Code") and type_name != "Betrag":
                yield from self.rows(nested, f"{path}/")


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return lines


def simple_type_summary(schema: Schema, name: str) -> str:
    node = schema.simple[name]
    restriction = node.find(f"{XS}restriction")
    if restriction is None:
        return ""
    parts = [f"Basis `{restriction.get('base')}`"]
    for facet in ("minLength", "maxLength", "totalDigits", "fractionDigits", "minExclusive"):
        found = restriction.find(f"{XS}{facet}")
        if found is not None:
            parts.append(f"{facet} {found.get('value')}")
    pattern = restriction.find(f"{XS}pattern")
    if pattern is not None:
        value = pattern.get("value", "")
        parts.append("Muster aus DIN SPEC 91379 (siehe Zeichensatz)" if len(value) > 200 else f"Muster `{value}`")
    return ", ".join(parts)


def codelist_section(codelist: CodeList) -> list[str]:
    lines = [
        f"### {codelist.name}",
        "",
        *table(
            ["Angabe", "Wert"],
            [
                ["Kennung (listURI)", f"`{codelist.uri}`"],
                ["Version (listVersionID)", codelist.version],
                ["Kennung der Version", f"`{codelist.uri}_{codelist.version}`"],
                ["gültig ab", codelist.valid_from],
                ["Herausgeber", codelist.agency],
                ["Beschreibung", codelist.description],
                ["Änderungen dieser Version", codelist.version_description],
            ],
        ),
        "",
    ]
    columns = list(codelist.columns)
    rows = [[row.get(column, "") for column in columns] for row in codelist.rows.values()]
    lines += [*table([codelist.columns[column] for column in columns], rows), ""]
    return lines


def lifecycle_section() -> list[str]:
    statuses = codelists().antragsstatus
    terminal = codelists().terminal_statuses
    lines = [
        "```mermaid",
        "stateDiagram-v2",
    ]
    for code in sorted(ENTRY_STATUSES):
        lines.append(f"    [*] --> s{code}")
    for code, row in statuses.rows.items():
        lines.append(f"    s{code} : {code} {row['label']}")
    for code in statuses.rows:
        for target in sorted(TRANSITIONS[code] - {code}):
            if target in {"500", "510"} and code not in {"100", "400", "410", "430", "440", "450"}:
                continue  # drawn for a few statuses only; the table lists them all
            lines.append(f"    s{code} --> s{target}")
    for code in sorted(terminal):
        lines.append(f"    s{code} --> [*]")
    lines += ["```", ""]
    rows = []
    for code, row in statuses.rows.items():
        following = ", ".join(sorted(TRANSITIONS[code] - {code})) or "keiner (Abschluss)"
        repeat = "ja" if code in TRANSITIONS[code] else "nein"
        rows.append(
            [
                code,
                row["label"],
                "ja" if code in ENTRY_STATUSES else "",
                "ja" if code in terminal else "",
                repeat,
                following,
                _REQUIRED_FOR_STATUS.get(code, ""),
                row["bundid"],
            ]
        )
    lines += table(
        ["Code", "Bezeichnung", "Beginn", "Abschluss", "Wiederholung", "zulässige Folgestatus", "Pflichtangabe", "ZBP"],
        rows,
    )
    lines.append("")
    lines.append(
        "Im Diagramm sind die Übergänge nach 500 und 510 nur an einigen Status gezeichnet; die Tabelle nennt alle. "
        "Die Spalte ZBP ist der Status im Statusmonitor des BundID-Postfachs (Spalte `bundid` der Codeliste)."
    )
    return lines


def text_rules_section() -> list[str]:
    lines = [
        "Die Zeichenliste ist `rueckkanal/data/xoev/din-spec-91379/latin_list_1.2.txt` (String.Latin+ 1.2, die "
        "Zeichen der "
        "DIN SPEC 91379:2019-03). Ein Datentyp ist eine Vereinigung von Gruppen; definierte Zeichenfolgen "
        "(Buchstabe mit kombinierenden Zeichen ohne eigenen Unicode-Punkt) zählen als ein Zeichen.",
        "",
    ]
    counts = {group: 0 for group in latinchars.GROUPS}
    sequences = dict(counts)
    for entry in latinchars.entries():
        (sequences if entry.is_sequence else counts)[entry.group] += 1
    lines += table(
        ["Gruppe", "Bezeichnung", "Zeichen", "Zeichenfolgen"],
        [[f"`{g}`", name, str(counts[g]), str(sequences[g])] for g, name in latinchars.GROUPS.items()],
    )
    lines.append("")
    lines += table(
        ["Datentyp", "Verwendung", "Gruppen", "Zeichen", "Zeichenfolgen"],
        [
            [
                d,
                latinchars.DATATYPE_NAMES[d],
                ", ".join(f"`{g}`" for g in groups),
                str(len(latinchars.characters(d))),
                str(len(latinchars.sequences(d))),
            ]
            for d, groups in latinchars.DATATYPES.items()
        ],
    )
    lines += [
        "",
        "Das Muster eines Datentyps wird aus der Liste erzeugt (`rueckkanal/latinchars.py`, `xsd_pattern`) und steht "
        "wörtlich in den Typen `String.Latin.*` des Schemas; das Ereignismodell prüft mit demselben Ausdruck. "
        "Einzeilige Typen lassen Tabulator, Zeilenvorschub und Wagenrücklauf (Gruppe N4) aus. Jeder Text wird "
        "zuerst in die Unicode-Normalform NFC gebracht.",
        "",
        "### Regel je Feld",
        "",
    ]
    lines += table(
        ["Feld im Ereignis", "Regel"], [[f"`{field}`", rule.describe()] for field, rule in TEXT_RULES.items()]
    )
    lines += [
        "",
        "Ein Zeichen außerhalb der Regel weist das Ereignis mit dem Grund `forbidden_character` zurück; die Meldung "
        "nennt Feld, Codepunkt und Unicode-Kategorie, nie den Text. Das Aktenzeichen wird nie verändert: es ist ein "
        "Suchschlüssel der Behörde.",
        "",
        "### Typografische Ersetzungen (Bürgertexte)",
        "",
    ]
    lines += table(
        ["Zeichen", "Ersatz"],
        [[f"U+{ord(char):04X}", repr(replacement)] for char, replacement in latinchars.TYPOGRAPHIC.items()],
    )
    lines += [
        "",
        "### Transliteration in den SEPA-Zeichensatz (Zahlungstexte)",
        "",
        "Erlaubt sind `a–z A–Z 0–9 / - ? : ( ) . , ' +` und das Leerzeichen (EPC217-08, Latin Character Set). "
        "Erst gilt die Tabelle (Umlaute nach DIN 5007-2), dann werden diakritische Zeichen entfernt (é → e); "
        "was danach nicht im Zeichensatz liegt, wird zurückgewiesen. Die Länge (140 bzw. 70) gilt nach der "
        "Transliteration.",
        "",
    ]
    lines += table(
        ["Zeichen", "Ersatz"],
        [[f"{char} (U+{ord(char):04X})", repr(out)] for char, out in latinchars.SEPA_TRANSLITERATION.items()],
    )
    return lines


def render() -> str:
    schema = Schema(XSD_PATH)
    lists = codelists()
    migration = ", ".join(f"{old} → {new}" for old, new in V1_TO_V2_STATUS.items())
    nachrichtentypen = {row.get("element"): code for code, row in lists.nachrichtentyp.rows.items()}
    out: list[str] = [
        "<!-- Erzeugt von scripts/handbook.py aus dem Schema und den Codelisten. Nicht von Hand ändern. -->",
        "",
        f"# XAntragsstatus {VERSION}: Nachrichtenhandbuch",
        "",
        schema.doc(schema.tree.getroot()),
        "",
        "XAntragsstatus meldet den Bearbeitungsstand eines Antrags aus dem Fachverfahren an das Portal, in dem er "
        "gestellt wurde. Der Standard folgt den Konventionen der XÖV-Standards, ohne selbst ein von der KoSIT "
        "betriebener Standard zu sein. Dieses Handbuch ist aus dem Schema, den Codelisten und den Regeln des "
        "Codes erzeugt; es kann nicht von ihnen abweichen.",
        "",
        "## Quellen",
        "",
        "- XÖV-Rahmenwerk und XÖV-Handbuch der KoSIT: Benennung der Nachrichten `<bereich>.<nachricht>.<nnnn>`, "
        "Code-Typen 1 bis 4, Codelisten im Genericode-Format mit XÖV-Metadaten (https://www.xoev.de).",
        "- XInneres-Basisnachricht (G2G) in der Fassung, die XWasser 1.0.0 verwendet "
        "(`http://xoev.de/schemata/basisnachricht/unqualified/g2g/1_1`): Attribute `produkt`, `produkthersteller` "
        "(Pflicht), `produktversion`, `test` (optional, Text), `standard`, `version` (fest); Leser und Autor als "
        "Behörde. Öffentliche Abschrift: Repository hd-gmbh-dev/xoev-xwasser-rs, `schemas/V1_0_0`.",
        "- DVDV-Präfixliste `urn:xoev-de:bund:bmi:bit:codeliste:dvdv.praefix`, Version 51 (ITZBund), aus derselben "
        "Abschrift der XRepository-Codelisten (`crates/codelists/data/V1_0_0/DVDV.Praefixe_51.xml`); ihr "
        "Genericode zeigt auch die XÖV-Metadaten (`xoev-cl-4`), denen die Listen hier folgen.",
        "- Rückweisungsgründe `urn:xoev-de:xgewerbeordnung:codeliste:rueckweisungsgruende`, Version 1 (Systematik "
        "T, X, V, S), aus derselben Abschrift. Die Fehlercode-Liste von XInneres selbst war nicht öffentlich "
        "zugänglich; die XGewerbeordnung-Liste folgt derselben XÖV-Systematik und ist die beste öffentliche Quelle.",
        "- XBau (Leitstelle XPlanung/XBau): versionierter Namensraum, damit Versionen nebeneinander bestehen; "
        "ebenso xdomea (`urn:xoev-de:xdomea:schema:3.1.0`), dessen URN-Form dieser Standard übernimmt.",
        "- DIN SPEC 91379:2019-03 und String.Latin+ 1.2 (KoSIT): Zeichen, Gruppen und Datentypen A–E. Die "
        "Zeichenliste stammt aus dem Repository String-Latin/DIN-91379-Characters-and-Sequences "
        "(`DIN_SPEC_91379_Deprecated/latin_list_1.2.txt`, CC BY 4.0). Die Zuordnung der Gruppen zu den "
        "Datentypen C, D und E ist aus String.Latin+ 1.2 übernommen; die Datentypen D und E verwendet kein Feld.",
        "- EPC217-08 (European Payments Council): SEPA-Zeichensatz für Zahlungstexte.",
        "",
        "## Namensraum und Versionen",
        "",
        *table(
            ["Angabe", "Wert"],
            [
                ["Namensraum", f"`{NAMESPACE}`"],
                ["Version (Attribut `version`, fest)", VERSION],
                ["Schema", f"`rueckkanal/data/xoev/{XSD_PATH.name}`"],
                *[[f"frühere Version {v}", f"`{ns}` (Rückweisung V000)"] for ns, v in PREVIOUS_NAMESPACES.items()],
            ],
        ),
        "",
        "Der Namensraum enthält die Version des Schemas. Eine neue Version bekommt einen neuen Namensraum, so dass "
        "ein Empfänger beide Schemata nebeneinander laden und jede Nachricht an ihrem Namensraum erkennen kann. "
        "Version 2.0.0 ist nicht abwärtskompatibel zu 1.0: die Codes 410 und 420 haben eine neue Bedeutung "
        f"(ein Vorgangsstand der Version 1 wird so gelesen: {migration}), "
        "Texte sind auf DIN SPEC 91379 beschränkt, die Rückweisungscodes und Präfixe sind neu. Die Nachrichten der "
        "Version 1.0 bleiben als Migrationstest gegen das Schema 1.0 erhalten (`tests/fixtures/golden-1.0/`); "
        "das Portal beantwortet eine Nachricht der Version 1.0 mit der Rückweisung V000.",
        "",
        "## Nachrichten",
        "",
    ]
    overview = []
    for element in schema.roots:
        name = element.get("name", "")
        overview.append([nachrichtentypen.get(name, ""), f"`{name}`", schema.doc(element)])
    out += [*table(["Nachrichtentyp", "Wurzelelement", "Beschreibung"], overview), ""]
    for element in schema.roots:
        name = element.get("name", "")
        type_name = schema.local(element.get("type"))
        complex_type = schema.complex[type_name]
        out += [f"### {name}", "", schema.doc(complex_type), "", "Attribute des Wurzelelements:", ""]
        attributes = [
            [
                f"`{a.get('name')}`",
                schema.local(a.get("type")),
                a.get("use", "optional") + (f", fest `{a.get('fixed')}`" if a.get("fixed") else ""),
                schema.doc(a),
            ]
            for a in schema.attributes(complex_type)
        ]
        out += [*table(["Attribut", "Typ", "Verwendung", "Beschreibung"], attributes), ""]
        rows = [[f"`{r.path}`", r.type, r.cardinality, r.doc] for r in schema.rows(complex_type)]
        out += [*table(["Element", "Typ", "Anzahl", "Beschreibung"], rows), ""]
    out += ["## Datentypen", "", "### Code-Typen", ""]
    code_rows = []
    for name, complex_type in sorted(schema.complex.items()):
        if not name.startswith("Code."):
            continue
        fixed = {a.get("name"): a.get("fixed", "") for a in complex_type.iter(f"{XS}attribute")}
        code_rows.append(
            [f"`{name}`", f"`{fixed.get('listURI', '')}`", fixed.get("listVersionID", ""), schema.doc(complex_type)]
        )
    out += [
        "Alle Code-Typen sind XÖV-Code-Typ 2: die Codeliste steht nicht im Schema, ihre Kennung und Version sind "
        "im Schema fest. `listURI` und `listVersionID` sind optional; fehlen sie, gelten die festen Werte. Ob ein "
        "Code in der Liste steht, prüft der Empfänger gegen die Codeliste (`rueckkanal validate`).",
        "",
        *table(["Typ", "listURI", "listVersionID", "Beschreibung"], code_rows),
        "",
        "### Einfache Typen",
        "",
    ]
    simple_rows = [
        [f"`{name}`", simple_type_summary(schema, name), schema.doc(node)]
        for name, node in sorted(schema.simple.items())
    ]
    out += [*table(["Typ", "Einschränkung", "Beschreibung"], simple_rows), ""]
    out += ["## Zeichensatz (DIN SPEC 91379)", "", *text_rules_section(), ""]
    out += ["## Codelisten", ""]
    for codelist in lists.all:
        out += codelist_section(codelist)
    out += [
        "## Lebenszyklus eines Vorgangs",
        "",
        "Ein Vorgang beginnt mit einem der Status "
        f"{', '.join(sorted(ENTRY_STATUSES))}. Nach dem Bescheid folgt der Rechtsbehelf dem Verwaltungsverfahren: "
        "400 entschieden → 410 Bescheid bekanntgegeben (Frist: Ende der Rechtsbehelfsfrist) → 420 bestandskräftig, "
        "oder 430 Widerspruch → 440 abgeholfen (ein neuer Bescheid folgt) bzw. 450 Widerspruchsbescheid (Frist: "
        "Ende der Klagefrist) → 420, wenn nicht geklagt wird; eine Klage beendet das Verwaltungsverfahren (510). "
        "420 ist endgültig; 500 und 510 nehmen nur 430 an.",
        "",
        *lifecycle_section(),
        "",
        "## Statusberichtigung (0102)",
        "",
        "Ein Fachverfahren berichtigt einen früher gemeldeten Status, indem es ein neues Ereignis mit eigener "
        "Ereignis-ID schickt und darin `berichtigtEventId` auf die ID des früheren Ereignisses setzt. Es nennt "
        "also sein eigenes Ereignis; die nachrichtenUUID der berichtigten Nachricht (Element `bezug`) wird daraus "
        "abgeleitet (UUID Version 5 aus Fachverfahren und Ereignis-ID), wie bei jeder Nachricht. Regeln:",
        "",
        "- Das berichtigte Ereignis muss eines der letzten 32 angenommenen Ereignisse desselben Vorgangs sein; sonst "
        "wird die Berichtigung mit `correction_unknown` zurückgewiesen (auch im Modus `warn`). Ein Portal, dem "
        "die berichtigte Nachricht fehlt, weist die 0102 mit AS104 zurück.",
        "- Wird der aktuelle Status berichtigt (`aktuellerStatus` = true), darf der Statuscode bleiben oder jeder "
        "Status werden, der an seiner Stelle zulässig war.",
        "- Wird ein früherer Status berichtigt (`aktuellerStatus` = false), darf sich nur sein Inhalt ändern, nicht "
        "der Statuscode (`illegal_correction`): spätere Status bauen auf ihm auf. Der aktuelle Status bleibt.",
        "- Die Berichtigung bekommt die nächste Sequenznummer des Vorgangs. Empfänger zeigen sie an der Stelle der "
        "berichtigten Meldung, als berichtigt gekennzeichnet (Portal-Simulator, status-web).",
        "- Der ZBP-Statusmonitor zeigt nur den aktuellen Status: eine Berichtigung des aktuellen Status wird als "
        "Statusaktualisierung gesendet, die eines früheren nicht; für die Status mit Postfachnachricht (210, 300, "
        "410) geht eine Nachricht mit dem Titel „Berichtigung: …“ ins BundID-Postfach.",
        "",
    ]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            sys.stderr.write(
                f"{OUTPUT.relative_to(ROOT)} is not what the XSD and the code lists produce: "
                "run `.venv/bin/python scripts/handbook.py` and commit the result\n"
            )
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
