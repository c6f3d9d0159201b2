//! Choosing the subprotocol from the client's `Sec-WebSocket-Protocol` header.

use crate::close::Close;

/// The two GraphQL-over-WebSocket protocols served on one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subprotocol {
    /// `graphql-transport-ws` (enisdenjo/graphql-ws, the GraphQL over WebSocket RFC).
    GraphqlTransportWs,
    /// `graphql-ws`, the legacy Apollo subscriptions-transport-ws protocol.
    GraphqlWs,
}

impl Subprotocol {
    /// The subprotocol token as it appears in `Sec-WebSocket-Protocol`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Subprotocol::GraphqlTransportWs => "graphql-transport-ws",
            Subprotocol::GraphqlWs => "graphql-ws",
        }
    }
}

/// The outcome of a successful negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The protocol to speak on this socket.
    pub subprotocol: Subprotocol,
    /// The value for the 101 response's `Sec-WebSocket-Protocol`, if one must be sent.
    pub echo: Option<&'static str>,
}

/// Picks the protocol from the `Sec-WebSocket-Protocol` header (several header lines joined
/// with `,`, in the order they were sent): the FIRST offered token the server speaks wins
/// (RFC 6455 §4.2.2: the client lists subprotocols in its order of preference); unknown tokens
/// are skipped. An absent or empty header means `graphql-transport-ws`, spoken but not echoed;
/// a header naming neither protocol is 4406 `Subprotocol not acceptable`.
pub fn negotiate(header: Option<&str>) -> Result<Negotiated, Close> {
    let mut offered = header
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .peekable();
    if offered.peek().is_none() {
        // RFC 6455 §4.1: a client that offered no subprotocol must fail the connection if the
        // server names one, so the default is spoken but not echoed.
        return Ok(Negotiated {
            subprotocol: Subprotocol::GraphqlTransportWs,
            echo: None,
        });
    }
    let subprotocol = offered
        .find_map(|token| {
            [Subprotocol::GraphqlTransportWs, Subprotocol::GraphqlWs]
                .into_iter()
                .find(|known| known.as_str() == token)
        })
        .ok_or_else(Close::subprotocol_not_acceptable)?;
    Ok(Negotiated {
        subprotocol,
        echo: Some(subprotocol.as_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Subprotocol::{GraphqlTransportWs as Modern, GraphqlWs as Legacy};

    /// `None` means refused with 4406.
    type Want = Option<(Subprotocol, Option<&'static str>)>;

    const MODERN: Want = Some((Modern, Some("graphql-transport-ws")));
    const LEGACY: Want = Some((Legacy, Some("graphql-ws")));
    const DEFAULT: Want = Some((Modern, None));
    const REFUSED: Want = None;

    /// Several `Sec-WebSocket-Protocol` header lines, joined as the server joins them (in the
    /// order received, with `,`).
    fn lines(values: &[&str]) -> String {
        values.join(",")
    }

    fn check(header: Option<&str>, want: Want) {
        let got = negotiate(header);
        match want {
            Some((subprotocol, echo)) => {
                assert_eq!(
                    got,
                    Ok(Negotiated { subprotocol, echo }),
                    "header {header:?}"
                )
            }
            None => {
                let close = got.expect_err("must be refused");
                assert_eq!(close.code(), 4406, "header {header:?}");
                assert_eq!(close.reason(), "Subprotocol not acceptable");
            }
        }
    }

    #[test]
    fn negotiation_table() {
        let cases: &[(Option<&str>, Want)] = &[
            // No header, or nothing in it: the default, not echoed.
            (None, DEFAULT),
            (Some(""), DEFAULT),
            (Some(" , ,"), DEFAULT),
            (Some("\t"), DEFAULT),
            // One protocol offered.
            (Some("graphql-transport-ws"), MODERN),
            (Some("graphql-ws"), LEGACY),
            // Both offered: the client's order of preference decides (RFC 6455 §4.2.2).
            (Some("graphql-ws, graphql-transport-ws"), LEGACY),
            (Some("graphql-ws,graphql-transport-ws"), LEGACY),
            (Some("graphql-transport-ws, graphql-ws"), MODERN),
            (Some("graphql-transport-ws,graphql-ws"), MODERN),
            // Repeated tokens change nothing.
            (Some("graphql-ws, graphql-ws, graphql-transport-ws"), LEGACY),
            (Some("graphql-transport-ws, graphql-transport-ws"), MODERN),
            // Whitespace (spaces and tabs) around tokens and commas.
            (Some("  graphql-ws  "), LEGACY),
            (Some("\tgraphql-transport-ws\t,\tgraphql-ws"), MODERN),
            (Some(" graphql-ws ,graphql-transport-ws "), LEGACY),
            (Some(",, graphql-ws ,, graphql-transport-ws,"), LEGACY),
            // Unknown tokens anywhere are skipped; the first known one wins.
            (Some("foo, graphql-ws"), LEGACY),
            (Some("foo, graphql-transport-ws"), MODERN),
            (Some("mqtt, graphql-ws, soap, graphql-transport-ws"), LEGACY),
            (Some("mqtt, graphql-transport-ws, soap, graphql-ws"), MODERN),
            (Some("graphql-ws, mqtt"), LEGACY),
            (
                Some("graphql-sse, graphql-transport-ws, graphql-ws"),
                MODERN,
            ),
            // 4406: a header naming neither protocol.
            (Some("foo"), REFUSED),
            (Some("graphql-sse, mqtt"), REFUSED),
            // Tokens are case-sensitive and must match whole.
            (Some("GraphQL-WS, graphql-ws-x"), REFUSED),
            (Some("Graphql-Transport-Ws"), REFUSED),
            (Some("graphql-transport-ws-x, xgraphql-ws"), REFUSED),
            (Some("graphql-ws graphql-transport-ws"), REFUSED),
            (Some("graphql-ws;q=1"), REFUSED),
        ];
        for &(header, want) in cases {
            check(header, want);
        }
    }

    #[test]
    fn several_header_lines_in_the_order_received() {
        let cases: &[(&[&str], Want)] = &[
            (&["graphql-ws", "graphql-transport-ws"], LEGACY),
            (&["graphql-transport-ws", "graphql-ws"], MODERN),
            (&["mqtt", "graphql-ws"], LEGACY),
            (&["mqtt", "graphql-transport-ws"], MODERN),
            (&["mqtt, soap", "graphql-ws, graphql-transport-ws"], LEGACY),
            (&["mqtt, graphql-transport-ws", "graphql-ws"], MODERN),
            (&["", "graphql-ws"], LEGACY),
            (&[" ", "  graphql-transport-ws "], MODERN),
            (&["", ""], DEFAULT),
            (&["mqtt", "soap"], REFUSED),
        ];
        for &(values, want) in cases {
            check(Some(&lines(values)), want);
        }
    }
}
