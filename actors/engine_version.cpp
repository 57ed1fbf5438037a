// The engine's wire protocol version, carried in cluster handshakes and checked on connect.
namespace actorserve {
extern const int engine_protocol_version = 1;
}
