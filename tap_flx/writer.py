"""Singer output through singer-sdk's msgspec writer, flushed per STATE instead of per record.

msgspec writes Decimal as an exact JSON number (simplejson's default writer is several times slower), and
one flush per record is one write(2) per record. Everything except RECORD is flushed at once, so a STATE
never waits in our buffer after the records it covers.
"""

from __future__ import annotations

import sys

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib.encoding.simple import Message, RecordMessage


class BufferedMsgSpecWriter(MsgSpecWriter):
    def write_message(self, message: Message) -> None:
        sys.stdout.buffer.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            sys.stdout.flush()
