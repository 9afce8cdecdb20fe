"""The rules of an EPC QR code ("GiroCode", EPC069-12 version 002, SEPA Credit Transfer). Pure.

A banking app that scans it fills in a transfer: payee name, IBAN, amount and the remittance text. The page offers
one only when the payment has all of them in a form the standard allows (:func:`transfer_for`); otherwise it shows
the payment link and the account in words, never a code a bank app would refuse or fill in wrongly.

Rules kept (EPC069-12 v3.0, section 3.4, "Data elements"): version 002 (BIC optional inside the EEA), character
set 1 (UTF-8), identification SCT; name at most 70 characters; IBAN as in ISO 13616; amount in EUR from 0.01 to
999999999.99 written ``EUR`` + digits with at most two decimals (no trailing zeros, as segno writes
it); unstructured remittance at most 140 characters;
the whole payload at most 331 bytes. The remittance is the Kassenzeichen where the payment has one (so the city's
cash office can book the transfer), else its Verwendungszweck.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from rueckkanal.tracking import Payment

MAX_PAYLOAD_BYTES = 331
MAX_NAME = 70
MAX_REMITTANCE = 140
MIN_AMOUNT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999.99")


@dataclass(frozen=True)
class Transfer:
    """A SEPA credit transfer as a GiroCode carries it."""

    name: str
    iban: str
    amount: Decimal
    remittance: str
    bic: str | None = None

    def payload(self) -> str:
        """The EPC payload text (the QR code's content), lines separated by LF, without a trailing newline."""
        lines = [
            "BCD",
            "002",
            "1",
            "SCT",
            self.bic or "",
            self.name,
            self.iban,
            "EUR" + f"{self.amount:.2f}".rstrip("0").rstrip("."),  # 96.00 → EUR96, 96.50 → EUR96.5
            "",  # purpose code
            "",  # structured remittance (ISO 11649); a Kassenzeichen is not one
            self.remittance,
        ]
        return "\n".join(lines)


def transfer_for(payment: Payment) -> Transfer | None:
    """The GiroCode transfer of a payment, or None when the standard cannot carry it."""
    if payment.iban is None or payment.empfaenger is None or payment.waehrung != "EUR":
        return None
    if not MIN_AMOUNT <= payment.betrag <= MAX_AMOUNT:
        return None
    remittance = payment.kassenzeichen or payment.verwendungszweck
    transfer = Transfer(
        name=payment.empfaenger[:MAX_NAME],
        iban=payment.iban,
        amount=payment.betrag,
        remittance=remittance[:MAX_REMITTANCE],
        bic=payment.bic,
    )
    if len(transfer.payload().encode("utf-8")) > MAX_PAYLOAD_BYTES:
        return None
    return transfer
