// Asio's ssl, compiled once (BOOST_ASIO_SEPARATE_COMPILATION, as lib/src/asio_impl.cpp does for
// the rest of Asio); only the server links OpenSSL.
#include <boost/asio/ssl/impl/src.hpp>
