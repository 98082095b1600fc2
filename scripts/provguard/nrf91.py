"""Facts about the nRF91 modem's credential store that several modules rely on: one definition each.

Sources: nRF91 AT command reference (`%CMNG`, `%KEYGEN`), sdk-nrf `lib/modem_key_mgmt/`, and
`CONFIG_NRF_CLOUD_SEC_TAG` in sdk-nrf `subsys/net/lib/nrf_cloud/Kconfig`.
"""

from __future__ import annotations

from typing import Final

#: Highest sec_tag of the user range (0-2147483647); higher tags are reserved.
SEC_TAG_MAX: Final = 2147483647
#: nRF Cloud's default sec_tag (`CONFIG_NRF_CLOUD_SEC_TAG`): writing it replaces the device's nRF
#: Cloud credentials.
NRF_CLOUD_SEC_TAG: Final = 16842753
#: The application's CONFIG_MQTT_TLS_SEC_TAG default (Kconfig, as in mqtt_simple): provguard's
#: sec_tag when neither --sec-tag nor a JSON export's secTag names one.
DEFAULT_SEC_TAG: Final = 24
#: nRF91x1 (mfw >= 2.0): TLS traffic on these tags can be decrypted from modem traces (tests only).
DECRYPTABLE_SEC_TAGS: Final = range(2147483648, 2147483667 + 1)
#: The AT host keeps 4096 bytes (`CONFIG_AT_HOST_CMD_MAX_LEN`) including the NUL ending a command.
AT_COMMAND_BUFFER: Final = 4096
#: Largest credential both paths handle: an AT command is at most 4096 bytes, and
#: modem_key_mgmt_cmp() reads a credential back (AT%CMNG=2: tag, type, SHA-256 and the quoted
#: content) into a 4096-byte buffer. 128 bytes cover that framing; the firmware asserts the same
#: limit (PROVGUARD_CREDENTIAL_MAX_LEN in app/src/credentials.h).
MODEM_CREDENTIAL_MAX: Final = AT_COMMAND_BUFFER - 128
