import ArgumentParser
@main struct Allot: AsyncParsableCommand { func run() async throws {} }
