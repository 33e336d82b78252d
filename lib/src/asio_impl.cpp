// Asio is compiled once, here, for bufpool's own programs (BOOST_ASIO_SEPARATE_COMPILATION is set
// on bufpool_asio_impl and propagates to them). The installed libraries do not use it.
#include <boost/asio/impl/src.hpp>
