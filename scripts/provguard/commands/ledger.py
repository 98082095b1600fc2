"""`provguard ledger show|export`: what the enrollment ledger recorded, and cloud upload files."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import make_url

from provguard.errors import EXIT_OK, InputError, UsageError
from provguard.ledger import DEFAULT_URL, Attempt, Ledger, latest_per_device

NAME = "ledger"
HELP = "show the enrollment ledger, or export it (CSV, JSON, nRF Cloud and AWS IoT upload files)"
DESCRIPTION = """\
show      every attempt: IMEI, station, sec_tag, outcome, certificate serial, times, error
export    one row per enrolled device (its current certificate), as:
  csv       every recorded column, with a header
  json      the same as a JSON array
  nrfcloud  the CSV nRF Cloud's bulk onboarding (ProvisionDevices, `nrf_cloud_onboard.py --csv`)
            accepts: no header, one row per device: deviceId,subType,tags,fwTypes,"certPem"
            (deviceId = the certificate's CN; tags and fwTypes pipe-delimited; at most 1000 rows
            per upload, so larger exports are split into FILE-1.csv, FILE-2.csv, ...)
  aws       JSON lines for AWS IoT bulk registration (StartThingRegistrationTask): one object per
            device with ThingName (the CN), SerialNumber (the IMEI), CertificatePem and
            CACertificatePem (the device CA), the parameters of a provisioning template whose
            AWS::IoT::Certificate takes CertificatePem and CACertificatePem

Private keys are never in the ledger: the keys were generated in the modems.
"""

NRF_CLOUD_MAX_ROWS = 1000
NRF_CLOUD_FW_TYPES = ("APP", "MODEM", "BOOT", "SOFTDEVICE", "BOOTLOADER")
_TAG_RE = re.compile(r"^[a-zA-Z0-9_.@:#-]+$")
_SUBTYPE_RE = re.compile(r"^[a-zA-Z0-9_.,@/:#-]{0,799}$")

SHOW_COLUMNS = (
    "id",
    "imei",
    "station",
    "port",
    "sec_tag",
    "outcome",
    "step",
    "cert_serial",
    "started_at",
    "ended_at",
    "error",
)
EXPORT_COLUMNS = (
    "imei",
    "device_id",
    "station",
    "sec_tag",
    "cert_serial",
    "cert_fingerprint",
    "device_ca_fingerprint",
    "modem_firmware",
    "enrolled_at",
    "outcome",
    "cert_pem",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger", default=DEFAULT_URL, metavar="URL", help=f"default {DEFAULT_URL}"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="every attempt")
    show.add_argument("--format", choices=("text", "csv", "json"), default="text")
    show.add_argument("--imei", help="only this device")
    export = actions.add_parser(
        "export",
        help="one row per enrolled device",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--format", choices=("csv", "json", "nrfcloud", "aws"), default="csv")
    export.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write here (refuses to overwrite)"
    )
    export.add_argument(
        "--device-id",
        choices=("cn", "uuid"),
        default="cn",
        help="nrfcloud/aws: the certificate's CN (default), or the modem's device UUID from its "
        "%%KEYGEN attestation (nRF Cloud's own default device id)",
    )
    export.add_argument("--subtype", default="", help="nrfcloud: the devices' subType")
    export.add_argument("--tags", default="", metavar="T1|T2", help="nrfcloud: pipe-delimited tags")
    export.add_argument(
        "--fw-types",
        default="APP|MODEM",
        metavar="TYPES",
        help="nrfcloud: pipe-delimited FOTA firmware types (default APP|MODEM)",
    )


def _existing_ledger(url: str) -> Ledger:
    """Open a ledger that exists: reading never creates an empty SQLite file by mistake."""
    parsed = make_url(url) if "://" in url else None
    if parsed is not None and parsed.get_backend_name() == "sqlite" and parsed.database:
        path = Path(parsed.database)
        if not path.is_file():
            raise InputError(
                "no ledger here (enroll creates it; give --ledger sqlite:///FILE)", path=path
            )
    return Ledger.open(url)


def run(args: argparse.Namespace) -> int:
    ledger = _existing_ledger(args.ledger)
    with ledger:
        if args.action == "show":
            rows = ledger.attempts(imei=args.imei)
            show(rows, args.format, sys.stdout)
            return EXIT_OK
        devices = latest_per_device(ledger.attempts())
        cas = ledger.device_ca_pems()
    if args.format == "nrfcloud":
        _check_nrfcloud_options(args)
        chunks = [
            devices[i : i + NRF_CLOUD_MAX_ROWS] for i in range(0, len(devices), NRF_CLOUD_MAX_ROWS)
        ] or [[]]
        if len(chunks) > 1 and args.output is None:
            raise UsageError(
                f"{len(devices)} devices: nRF Cloud takes at most {NRF_CLOUD_MAX_ROWS} per upload; "
                "give --output FILE to get them split into FILE-1.csv, FILE-2.csv, ..."
            )
        outputs = _chunk_paths(args.output, len(chunks))
        for path in outputs:  # all or nothing: never half an export
            if path is not None and path.exists():
                raise InputError("exists: not overwriting; choose another --output", path=path)
        for chunk, path in zip(chunks, outputs, strict=True):
            _emit(path, nrfcloud_csv(chunk, args.subtype, args.tags, args.fw_types, args.device_id))
        return EXIT_OK
    if args.format == "aws":
        text = aws_jsonl(devices, cas, args.device_id)
    elif args.format == "json":
        text = json.dumps([export_row(d) for d in devices], indent=2) + "\n"
    else:
        text = _csv(EXPORT_COLUMNS, [export_row(d) for d in devices], header=True)
    _emit(args.output, text)
    return EXIT_OK


def _chunk_paths(output: Path | None, count: int) -> list[Path | None]:
    if output is None or count == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{n}{output.suffix}") for n in range(1, count + 1)]


def _emit(path: Path | None, text: str) -> None:
    if path is None:
        sys.stdout.write(text)
        return
    try:
        with path.open("x", encoding="utf-8", newline="") as stream:
            stream.write(text)
    except FileExistsError:
        raise InputError("exists: not overwriting; choose another --output", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", path=path) from None
    print(f"wrote {path}", file=sys.stderr)


def _check_nrfcloud_options(args: argparse.Namespace) -> None:
    if not _SUBTYPE_RE.match(args.subtype):
        raise UsageError(
            f"--subtype {args.subtype!r}: nRF Cloud allows a-z A-Z 0-9 _ . , @ / : # -"
        )
    for tag in filter(None, args.tags.split("|")):
        if not _TAG_RE.match(tag):
            raise UsageError(f"--tags: {tag!r}: nRF Cloud tags allow a-z A-Z 0-9 _ . @ : # -")
    for kind in args.fw_types.split("|"):
        if kind not in NRF_CLOUD_FW_TYPES:
            raise UsageError(f"--fw-types: {kind!r} is not one of {', '.join(NRF_CLOUD_FW_TYPES)}")


def device_id(row: Attempt, kind: str = "cn") -> str:
    """The certificate's CN (the device id the subject template made, `nrf-<IMEI>`), or the
    device UUID the modem's %KEYGEN attestation named."""
    if kind == "uuid":
        if row.device_uuid is None:
            raise InputError(
                f"IMEI {row.imei}: no device UUID recorded (its key was not generated by "
                "%KEYGEN in an attempt this ledger recorded): use --device-id cn"
            )
        return row.device_uuid
    assert row.cert_pem is not None
    cert = x509.load_pem_x509_certificate(row.cert_pem.encode("ascii"))
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else str(row.imei)


def export_row(row: Attempt) -> dict[str, object]:
    return {
        "imei": row.imei,
        "device_id": device_id(row),
        "station": row.station,
        "sec_tag": row.sec_tag,
        "cert_serial": row.cert_serial,
        "cert_fingerprint": row.cert_fingerprint,
        "device_ca_fingerprint": row.device_ca_fingerprint,
        "modem_firmware": row.modem_firmware,
        "enrolled_at": row.ended_at,
        "outcome": row.outcome,
        "cert_pem": row.cert_pem,
    }


def nrfcloud_csv(
    rows: Sequence[Attempt], subtype: str, tags: str, fw_types: str, id_kind: str = "cn"
) -> str:
    """nRF Cloud ProvisionDevices CSV: no header; deviceId,subType,tags,fwTypes,"certPem"."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        assert row.cert_pem is not None
        writer.writerow([device_id(row, id_kind), subtype, tags, fw_types, row.cert_pem])
    # The certificate is always quoted (its line breaks force it); the other columns are
    # quoted by the csv module only when they must be.
    return out.getvalue()


def aws_jsonl(rows: Sequence[Attempt], cas: dict[str, str], id_kind: str = "cn") -> str:
    lines = []
    for row in rows:
        lines.append(
            json.dumps(
                {
                    "ThingName": device_id(row, id_kind),
                    "SerialNumber": row.imei,
                    "CertificatePem": row.cert_pem,
                    "CACertificatePem": cas.get(row.device_ca_fingerprint),
                }
            )
        )
    return "".join(line + "\n" for line in lines)


def _csv(columns: Sequence[str], rows: Sequence[dict[str, object]], *, header: bool) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    return out.getvalue()


def show(rows: Sequence[Attempt], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        json.dump([r.to_dict() for r in rows], out, indent=2)
        out.write("\n")
        return
    if fmt == "csv":
        out.write(_csv(SHOW_COLUMNS, [r.to_dict() for r in rows], header=True))
        return
    table = [["ID", "IMEI", "STATION", "TAG", "OUTCOME", "SERIAL", "STARTED", "ERROR"]]
    for r in rows:
        table.append(
            [
                str(r.id),
                r.imei or "-",
                r.station,
                str(r.sec_tag),
                r.outcome if r.outcome != "in_progress" else f"in_progress ({r.step})",
                (r.cert_serial or "-")[:16],
                r.started_at[:19],
                (r.error or "")[:60],
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        out.write("  ".join(c.ljust(widths[i]) for i, c in enumerate(line)).rstrip() + "\n")
    out.write(f"{len(rows)} attempt(s)\n")
