// Asio is compiled once, here, instead of in every translation unit that includes it
// (BOOST_ASIO_SEPARATE_COMPILATION is set on the bufpool target and propagates to its users).
#include <boost/asio/impl/src.hpp>
